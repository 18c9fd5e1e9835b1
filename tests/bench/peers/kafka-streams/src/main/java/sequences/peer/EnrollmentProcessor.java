package sequences.peer;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Timestamp;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalDate;
import java.time.ZoneId;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.processor.PunctuationType;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueIterator;
import org.apache.kafka.streams.state.KeyValueStore;
import sequences.peer.proto.PeerEnrollment;
import sequences.v1.Effects.EmailMode;
import sequences.v1.Effects.EmailSend;
import sequences.v1.Effects.TaskCreated;
import sequences.v1.EnrollmentInputs.EnrollRequested;
import sequences.v1.Events.Envelope;
import sequences.v1.Sequence.ActivityStep;
import sequences.v1.Sequence.Date;
import sequences.v1.Sequence.EmailStep;
import sequences.v1.Sequence.Step;
import sequences.v1.Sequence.UserChoice;
import sequences.v1.SequenceEvents.SequenceCreated;

/**
 * One task of the peer (one partition of enrollment-events): folds EnrollRequested into the
 * "enrollments" store, keeps the "due-index" store (key: 8 bytes of big-endian due time in
 * microseconds, then the enrollment key) and fires due steps from a wall-clock punctuator,
 * forwarding TaskCreated / EmailSend envelopes to the task and email sinks. A step already due
 * when its enrollment arrives (an immediate first step) fires at once.
 *
 * <p>Inputs other than EnrollRequested (remove, pause, completion feedback, ...) are not handled:
 * the benchmark's workload has none (README.md, "What the peer does").
 */
final class EnrollmentProcessor implements Processor<String, byte[], String, byte[]> {
  static final String ENROLLMENTS = "enrollments";
  static final String DUE_INDEX = "due-index";
  static final String SEQUENCES = "sequences";
  static final String TASKS = "tasks";
  static final String EMAILS = "emails";

  static final AtomicLong enrolled = new AtomicLong();
  static final AtomicLong fired = new AtomicLong();
  static final AtomicLong dropped = new AtomicLong();

  private final Duration punctuateEvery;
  private final int maxFiresPerPunctuation;
  private ProcessorContext<String, byte[]> context;
  private KeyValueStore<String, byte[]> enrollments;
  private KeyValueStore<Bytes, byte[]> dueIndex;
  private KeyValueStore<String, byte[]> sequences;
  // Where the next scan of the due index may start: every entry before it has fired (entries
  // are only ever added at or after the current time, since earlier ones fire at once).
  private long scanFromMicros = 0;

  EnrollmentProcessor(Duration punctuateEvery, int maxFiresPerPunctuation) {
    this.punctuateEvery = punctuateEvery;
    this.maxFiresPerPunctuation = maxFiresPerPunctuation;
  }

  @Override
  public void init(ProcessorContext<String, byte[]> context) {
    this.context = context;
    this.enrollments = context.getStateStore(ENROLLMENTS);
    this.dueIndex = context.getStateStore(DUE_INDEX);
    this.sequences = context.getStateStore(SEQUENCES);
    context.schedule(punctuateEvery, PunctuationType.WALL_CLOCK_TIME, this::fireDue);
  }

  @Override
  public void process(Record<String, byte[]> record) {
    Envelope input;
    try {
      input = Envelope.parseFrom(record.value());
    } catch (InvalidProtocolBufferException e) {
      dropped.incrementAndGet();
      return;
    }
    if (!input.hasEnrollRequested()) return;
    EnrollRequested r = input.getEnrollRequested();
    SequenceCreated seq = sequence(r.getSequenceId());
    if (seq == null || r.getItemKey().isEmpty()) {
      dropped.incrementAndGet();  // the executor defers these; the benchmark never sends one
      return;
    }
    String key = r.getItemKey() + "#" + r.getSequenceId();
    byte[] stored = enrollments.get(key);
    PeerEnrollment before = stored == null ? null : parse(stored);
    if (before != null
        && (before.getRequestIdsList().contains(r.getRequestId()) || before.getNextStepIndex() >= 0)) {
      return;  // a repeated request, or already enrolled and active
    }
    Instant now = Instant.ofEpochMilli(context.currentSystemTimeMs());
    String company = r.getItemKey().contains("/") ? r.getItemKey().split("/", 2)[0] : "";
    int count = before == null ? 1 : before.getEnrollmentCount() + 1;
    String zone = Schedule.resolveZone(r.getTimeZones(), seq.getSettings().getDefaultTimeZone());
    PeerEnrollment.Builder e =
        PeerEnrollment.newBuilder()
            .setEnrollmentId(key + "#" + count)
            .setItemKey(r.getItemKey())
            .setSequenceId(r.getSequenceId())
            .setCompanyId(company)
            .setCorrelationId(
                input.getCorrelationId().isEmpty() ? r.getRequestId() : input.getCorrelationId())
            .setOwnerId(r.getOwnerId())
            .setRecipient(r.getRecipient())
            .setTimeZone(zone)
            .putAllMergeData(r.getMergeDataMap())
            .setEnrollmentCount(count)
            .setNextStepIndex(-1);
    if (before != null) e.addAllRequestIds(before.getRequestIdsList());
    e.addRequestIds(r.getRequestId());
    enrolled.incrementAndGet();
    if (seq.getStepsCount() == 0) {
      enrollments.put(key, e.build().toByteArray());
      return;
    }
    long due = Schedule.dueMicros(now, seq.getSteps(0), Schedule.zone(zone));
    e.setNextStepIndex(0).setDueAtMicros(due);
    if (due <= micros(now)) {
      fire(key, e.build(), seq, now);
    } else {
      enrollments.put(key, e.build().toByteArray());
      dueIndex.put(dueKey(due, key), new byte[0]);
    }
  }

  /** The punctuator: fires every due-index entry up to now, at most maxFiresPerPunctuation. */
  private void fireDue(long wallClockMs) {
    Instant now = Instant.ofEpochMilli(wallClockMs);
    long nowMicros = micros(now);
    int n = 0;
    long resumeAt = nowMicros + 1;
    try (KeyValueIterator<Bytes, byte[]> it =
        dueIndex.range(dueKey(scanFromMicros, ""), dueKey(nowMicros + 1, ""))) {
      while (it.hasNext()) {
        Bytes k = it.next().key;
        ByteBuffer b = ByteBuffer.wrap(k.get());
        long due = b.getLong();
        if (due > nowMicros) break;
        if (n == maxFiresPerPunctuation) {
          resumeAt = due;
          break;
        }
        String key = new String(k.get(), 8, k.get().length - 8, StandardCharsets.UTF_8);
        dueIndex.delete(k);
        byte[] stored = enrollments.get(key);
        if (stored == null) continue;
        PeerEnrollment e = parse(stored);
        if (e.getNextStepIndex() < 0 || e.getDueAtMicros() != due) continue;  // stale entry
        SequenceCreated seq = sequence(e.getSequenceId());
        if (seq == null) continue;
        fire(key, e, seq, now);
        ++n;
      }
    }
    scanFromMicros = resumeAt;
  }

  /** Executes e's next step: the effect out, the step after it into the due index. */
  private void fire(String key, PeerEnrollment e, SequenceCreated seq, Instant now) {
    int idx = e.getNextStepIndex();
    if (idx >= seq.getStepsCount()) {
      enrollments.put(key, e.toBuilder().setNextStepIndex(-1).build().toByteArray());
      return;
    }
    Step step = seq.getSteps(idx);
    String effectPrefix = e.getEnrollmentId() + "/" + step.getId();
    String cause = effectPrefix + "/due@" + e.getDueAtMicros();
    Timestamp nowProto = timestamp(micros(now));
    ZoneId zone = Schedule.zone(e.getTimeZone());
    if (step.hasActivity()) {
      ActivityStep a = step.getActivity();
      String id = effectPrefix + "/task";
      LocalDate day = now.atZone(zone).toLocalDate();
      TaskCreated.Builder t =
          TaskCreated.newBuilder()
              .setTaskId(id)
              .setEnrollmentId(e.getEnrollmentId())
              .setItemKey(e.getItemKey())
              .setSequenceId(e.getSequenceId())
              .setStepId(step.getId())
              .setActivityType(a.getActivityType())
              .setSubject(render(a.getSubject(), e.getMergeDataMap()))
              .setAssigneeUserId(resolveUser(a.getAssignee(), e))
              .setPriority(a.getPriority())
              .setNote(render(a.getNote(), e.getMergeDataMap()))
              .setDueDate(
                  Date.newBuilder()
                      .setYear(day.getYear())
                      .setMonth(day.getMonthValue())
                      .setDay(day.getDayOfMonth()))
              .setTimeZone(e.getTimeZone())
              .setWaitForCompletion(a.getWaitForCompletion());
      Instant taskDue = now;
      if (a.hasDueTime()) {
        taskDue =
            day.atTime(a.getDueTime().getHours(), a.getDueTime().getMinutes())
                .atZone(zone)
                .toInstant();
        t.setDueTime(a.getDueTime());
      }
      t.setDueAt(timestamp(micros(taskDue)));
      Envelope out = envelope(id, e, nowProto, cause).setTaskCreated(t).build();
      context.forward(new Record<>(e.getItemKey(), out.toByteArray(), now.toEpochMilli()), TASKS);
    } else if (step.hasEmail()) {
      EmailStep m = step.getEmail();
      String id = effectPrefix + "/email";
      EmailSend p =
          EmailSend.newBuilder()
              .setIdempotencyKey(id)
              .setEnrollmentId(e.getEnrollmentId())
              .setItemKey(e.getItemKey())
              .setSequenceId(e.getSequenceId())
              .setStepId(step.getId())
              .setSenderUserId(resolveUser(m.getSender(), e))
              .setRecipient(e.getRecipient())
              .setSubject(render(m.getSubject(), e.getMergeDataMap()))
              .setBody(render(m.getBody(), e.getMergeDataMap()))
              .setBodyIsHtml(m.getBodyIsHtml())
              .setMode(
                  m.getSendAutomatically()
                      ? EmailMode.EMAIL_MODE_AUTOMATIC
                      : EmailMode.EMAIL_MODE_DRAFT_FOR_REVIEW)
              .setScheduledAt(nowProto)
              .build();
      Envelope out = envelope(id, e, nowProto, cause).setEmailSend(p).build();
      context.forward(new Record<>(e.getItemKey(), out.toByteArray(), now.toEpochMilli()), EMAILS);
    }
    fired.incrementAndGet();
    PeerEnrollment.Builder next = e.toBuilder();
    int nextIdx = idx + 1;
    if (nextIdx < seq.getStepsCount() && !(step.hasActivity() && step.getActivity().getWaitForCompletion())) {
      long due = Schedule.dueMicros(now, seq.getSteps(nextIdx), zone);
      next.setNextStepIndex(nextIdx).setDueAtMicros(due);
      dueIndex.put(dueKey(due, key), new byte[0]);
    } else {
      next.setNextStepIndex(-1).setDueAtMicros(0);
    }
    enrollments.put(key, next.build().toByteArray());
  }

  private SequenceCreated sequence(String id) {
    byte[] v = sequences.get(id);
    if (v == null) return null;
    try {
      return SequenceCreated.parseFrom(v);
    } catch (InvalidProtocolBufferException ex) {
      return null;
    }
  }

  private static Envelope.Builder envelope(
      String id, PeerEnrollment e, Timestamp at, String cause) {
    return Envelope.newBuilder()
        .setEventId(id)
        .setCompanyId(e.getCompanyId())
        .setOccurredAt(at)
        .setCausationId(cause)
        .setCorrelationId(e.getCorrelationId());
  }

  private static String resolveUser(UserChoice choice, PeerEnrollment e) {
    if (choice.getChoiceCase() == UserChoice.ChoiceCase.USER_ID && !choice.getUserId().isEmpty()) {
      return choice.getUserId();
    }
    return e.getOwnerId();
  }

  /** "{{ path }}" filled from the merge data; a field without a value stays as written. */
  static String render(String text, Map<String, String> data) {
    if (!text.contains("{{")) return text;
    StringBuilder out = new StringBuilder();
    int at = 0;
    while (true) {
      int open = text.indexOf("{{", at);
      int close = open < 0 ? -1 : text.indexOf("}}", open + 2);
      if (open < 0 || close < 0) {
        out.append(text, at, text.length());
        return out.toString();
      }
      String path = text.substring(open + 2, close).trim();
      String value = data.get(path);
      out.append(text, at, open).append(value != null ? value : text.substring(open, close + 2));
      at = close + 2;
    }
  }

  static Bytes dueKey(long dueMicros, String key) {
    byte[] k = key.getBytes(StandardCharsets.UTF_8);
    return Bytes.wrap(ByteBuffer.allocate(8 + k.length).putLong(dueMicros).put(k).array());
  }

  private static PeerEnrollment parse(byte[] b) {
    try {
      return PeerEnrollment.parseFrom(b);
    } catch (InvalidProtocolBufferException ex) {
      throw new IllegalStateException("corrupt enrollment in the store", ex);
    }
  }

  static long micros(Instant t) {
    return t.getEpochSecond() * 1_000_000L + t.getNano() / 1_000;
  }

  private static Timestamp timestamp(long micros) {
    return Timestamp.newBuilder()
        .setSeconds(Math.floorDiv(micros, 1_000_000L))
        .setNanos((int) Math.floorMod(micros, 1_000_000L) * 1000)
        .build();
  }
}
