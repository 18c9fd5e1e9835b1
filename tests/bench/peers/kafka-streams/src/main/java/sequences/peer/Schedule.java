package sequences.peer;

import java.time.DayOfWeek;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.LocalTime;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.time.temporal.ChronoUnit;
import sequences.v1.Sequence.Step;
import sequences.v1.Sequence.TimeZones;

/**
 * When a step comes due, for the benchmark's workload shape: delays in minutes, hours, days or
 * business days (Monday to Friday), with an optional "at HH:MM" in the enrollment's time zone, as
 * libs/domain/schedule.h defines them. Send windows and holidays are not modelled (the benchmark's
 * sequences have none). Pure: the caller passes the anchor.
 */
final class Schedule {
  private Schedule() {}

  /** The first valid zone of recipient, owner, company, the sequence's default, else UTC. */
  static String resolveZone(TimeZones zones, String defaultZone) {
    for (String name :
        new String[] {zones.getRecipient(), zones.getOwner(), zones.getCompany(), defaultZone}) {
      if (name == null || name.isEmpty()) continue;
      try {
        ZoneId.of(name);
        return name;
      } catch (RuntimeException e) {
        // not a zone: try the next
      }
    }
    return "UTC";
  }

  static ZoneId zone(String name) {
    try {
      return ZoneId.of(name);
    } catch (RuntimeException e) {
      return ZoneOffset.UTC;
    }
  }

  /** Due instant in microseconds since the epoch (rounded up to a whole microsecond). */
  static long dueMicros(Instant anchor, Step step, ZoneId zone) {
    Instant due = applyDelay(anchor, step, zone);
    long micros = ChronoUnit.MICROS.between(Instant.EPOCH, due);
    return Instant.EPOCH.plus(micros, ChronoUnit.MICROS).isBefore(due) ? micros + 1 : micros;
  }

  static Instant applyDelay(Instant anchor, Step step, ZoneId zone) {
    int amount = Math.max(0, step.getDelay().getAmount());
    boolean hasTime = step.hasAtTime();
    switch (step.getDelay().getUnit()) {
      case DELAY_UNIT_DAYS:
      case DELAY_UNIT_BUSINESS_DAYS: {
        if (amount == 0 && !hasTime) return anchor;
        boolean business = step.getDelay().getUnit() == sequences.v1.Sequence.DelayUnit.DELAY_UNIT_BUSINESS_DAYS;
        ZonedDateTime local = anchor.atZone(zone);
        LocalDate target =
            business ? addBusinessDays(local.toLocalDate(), amount) : local.toLocalDate().plusDays(amount);
        LocalTime time =
            hasTime
                ? LocalTime.of(step.getAtTime().getHours(), step.getAtTime().getMinutes())
                : local.toLocalTime();
        Instant result = ZonedDateTime.of(LocalDateTime.of(target, time), zone).toInstant();
        for (int guard = 0; result.isBefore(anchor) && guard < 10; ++guard) {
          target = business ? addBusinessDays(target, 1) : target.plusDays(1);
          result = ZonedDateTime.of(LocalDateTime.of(target, time), zone).toInstant();
        }
        return result;
      }
      default: {
        Duration d =
            step.getDelay().getUnit() == sequences.v1.Sequence.DelayUnit.DELAY_UNIT_HOURS
                ? Duration.ofHours(amount)
                : Duration.ofMinutes(amount);
        Instant t = anchor.plus(d);
        if (!hasTime) return t;
        ZonedDateTime local = t.atZone(zone);
        LocalTime at = LocalTime.of(step.getAtTime().getHours(), step.getAtTime().getMinutes());
        LocalDate day = local.toLocalDate();
        Instant candidate = ZonedDateTime.of(LocalDateTime.of(day, at), zone).toInstant();
        if (candidate.isBefore(t)) {
          candidate = ZonedDateTime.of(LocalDateTime.of(day.plusDays(1), at), zone).toInstant();
        }
        return candidate;
      }
    }
  }

  private static LocalDate addBusinessDays(LocalDate day, int n) {
    LocalDate d = day;
    while (n > 0) {
      d = d.plusDays(1);
      if (d.getDayOfWeek() != DayOfWeek.SATURDAY && d.getDayOfWeek() != DayOfWeek.SUNDAY) --n;
    }
    return d;
  }
}
