package sequences.peer;

import com.google.protobuf.InvalidProtocolBufferException;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.Stores;
import sequences.v1.Events.Envelope;
import sequences.v1.SequenceEvents.SequenceCreated;

/**
 * The Kafka Streams peer of tests/bench (README.md here). Reads the system's topics under
 * --topic_prefix: sequence definitions from sequence-events into a global store, EnrollRequested
 * from enrollment-events; writes TaskCreated to task-events and EmailSend to email-events.
 *
 * <p>Flags (--name=value): bootstrap, topic_prefix, application_id (default prefix +
 * "kafka-streams-peer"), instance_id (static membership, default "a"), state_dir, threads (2),
 * commit_interval_ms (100), cache_mib (64), punctuate_ms (50), max_fires_per_punctuation (500),
 * session_timeout_ms (10000).
 */
public final class StreamsPeer {
  private StreamsPeer() {}

  public static void main(String[] args) throws Exception {
    Map<String, String> flags = new HashMap<>();
    for (String a : args) {
      if (!a.startsWith("--") || !a.contains("=")) {
        System.err.println("usage: StreamsPeer --name=value ... (bad argument " + a + ")");
        System.exit(2);
      }
      flags.put(a.substring(2, a.indexOf('=')), a.substring(a.indexOf('=') + 1));
    }
    String prefix = flags.getOrDefault("topic_prefix", "sequences.");
    Properties p = new Properties();
    p.put(StreamsConfig.APPLICATION_ID_CONFIG,
        flags.getOrDefault("application_id", prefix + "kafka-streams-peer"));
    p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, flags.getOrDefault("bootstrap", "127.0.0.1:9092"));
    p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
    p.put(StreamsConfig.STATE_DIR_CONFIG, flags.getOrDefault("state_dir", "/tmp/kafka-streams-peer"));
    p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, Integer.parseInt(flags.getOrDefault("threads", "2")));
    p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG,
        Long.parseLong(flags.getOrDefault("commit_interval_ms", "100")));
    p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG,
        Long.parseLong(flags.getOrDefault("cache_mib", "64")) << 20);
    p.put(StreamsConfig.ROCKSDB_CONFIG_SETTER_CLASS_CONFIG, BoundedMemoryRocksDbConfig.class);
    // Static membership, as the executor: a restarted instance takes its partitions back at once.
    p.put(StreamsConfig.mainConsumerPrefix(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG),
        flags.getOrDefault("instance_id", "a"));
    p.put(StreamsConfig.mainConsumerPrefix(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG),
        Integer.parseInt(flags.getOrDefault("session_timeout_ms", "10000")));

    Duration punctuate = Duration.ofMillis(Long.parseLong(flags.getOrDefault("punctuate_ms", "50")));
    int maxFires = Integer.parseInt(flags.getOrDefault("max_fires_per_punctuation", "500"));
    Topology topology = topology(prefix, punctuate, maxFires);

    KafkaStreams streams = new KafkaStreams(topology, p);
    CountDownLatch done = new CountDownLatch(1);
    streams.setStateListener(
        (now, before) -> {
          log("state", now.toString());
          if (now == KafkaStreams.State.RUNNING) log("running", "");
          if (now == KafkaStreams.State.ERROR || now == KafkaStreams.State.NOT_RUNNING) {
            done.countDown();
          }
        });
    streams.setUncaughtExceptionHandler(
        e -> {
          log("fatal", String.valueOf(e));
          return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler
              .StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  streams.close(Duration.ofSeconds(30));
                  done.countDown();
                }));
    Thread metrics =
        new Thread(
            () -> {
              while (true) {
                try {
                  Thread.sleep(5000);
                } catch (InterruptedException e) {
                  return;
                }
                log("metrics", "enrolled=" + EnrollmentProcessor.enrolled.get() + " fired="
                    + EnrollmentProcessor.fired.get() + " dropped="
                    + EnrollmentProcessor.dropped.get());
              }
            });
    metrics.setDaemon(true);
    metrics.start();
    streams.start();
    done.await();
    System.exit(streams.state() == KafkaStreams.State.ERROR ? 1 : 0);
  }

  static Topology topology(String prefix, Duration punctuate, int maxFires) {
    Topology t = new Topology();
    // Sequence definitions: every task needs every sequence, so a global store (not logged: the
    // topic itself is its changelog), folded from the sequence events.
    t.addGlobalStore(
        Stores.keyValueStoreBuilder(
                Stores.persistentKeyValueStore(EnrollmentProcessor.SEQUENCES),
                Serdes.String(),
                Serdes.ByteArray())
            .withLoggingDisabled(),
        "sequence-events",
        Serdes.String().deserializer(),
        Serdes.ByteArray().deserializer(),
        prefix + "sequence-events",
        "fold-sequences",
        SequenceFold::new);
    t.addSource("enrollment-events", Serdes.String().deserializer(),
        Serdes.ByteArray().deserializer(), prefix + "enrollment-events");
    t.addProcessor("enrollments",
        () -> new EnrollmentProcessor(punctuate, maxFires), "enrollment-events");
    t.addStateStore(
        Stores.keyValueStoreBuilder(
                Stores.persistentKeyValueStore(EnrollmentProcessor.ENROLLMENTS),
                Serdes.String(),
                Serdes.ByteArray())
            .withCachingEnabled(),
        "enrollments");
    t.addStateStore(
        Stores.keyValueStoreBuilder(
                Stores.persistentKeyValueStore(EnrollmentProcessor.DUE_INDEX),
                Serdes.Bytes(),
                Serdes.ByteArray())
            .withCachingEnabled(),
        "enrollments");
    t.addSink(EnrollmentProcessor.TASKS, prefix + "task-events", Serdes.String().serializer(),
        Serdes.ByteArray().serializer(), "enrollments");
    t.addSink(EnrollmentProcessor.EMAILS, prefix + "email-events", Serdes.String().serializer(),
        Serdes.ByteArray().serializer(), "enrollments");
    return t;
  }

  /** Keeps the latest definition of each sequence: created, steps replaced, deleted. */
  static final class SequenceFold implements Processor<String, byte[], Void, Void> {
    private KeyValueStore<String, byte[]> store;

    @Override
    public void init(ProcessorContext<Void, Void> context) {
      store = context.getStateStore(EnrollmentProcessor.SEQUENCES);
    }

    @Override
    public void process(Record<String, byte[]> record) {
      Envelope e;
      try {
        e = Envelope.parseFrom(record.value());
      } catch (InvalidProtocolBufferException ex) {
        return;
      }
      if (e.hasSequenceCreated()) {
        store.put(e.getSequenceCreated().getSequenceId(), e.getSequenceCreated().toByteArray());
      } else if (e.hasSequenceStepsReplaced()) {
        byte[] b = store.get(e.getSequenceStepsReplaced().getSequenceId());
        if (b == null) return;
        try {
          SequenceCreated s = SequenceCreated.parseFrom(b);
          store.put(s.getSequenceId(), s.toBuilder().clearSteps()
              .addAllSteps(e.getSequenceStepsReplaced().getStepsList())
              .setVersion(e.getSequenceStepsReplaced().getVersion()).build().toByteArray());
        } catch (InvalidProtocolBufferException ex) {
          // a definition this fold wrote itself: cannot happen
        }
      } else if (e.hasSequenceDeleted()) {
        store.delete(e.getSequenceDeleted().getSequenceId());
      }
    }
  }

  static void log(String msg, String detail) {
    System.out.println("{\"msg\":\"" + msg + "\",\"detail\":\"" + detail + "\",\"at_ms\":"
        + System.currentTimeMillis() + "}");
    System.out.flush();
  }
}
