import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Phaser;
import java.util.concurrent.TimeUnit;

import org.apache.rocketmq.client.hook.SendMessageContext;
import org.apache.rocketmq.client.hook.SendMessageHook;
import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendCallback;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.common.message.MessageClientIDSetter;

/**
 * Chaos probe with the official producer, so failover verdicts hold for the client applications run: a
 * DefaultMQProducer with its default settings (retryTimesWhenSendFailed 2, sendMsgTimeout 3000 ms) sends to a topic at
 * a fixed rate for a duration, open loop like the Python ProducerProbe (after the first send, a send starts on schedule
 * whether or not earlier ones finished, up to --threads in flight), prints one journal "send" event per send, then
 * exits.
 *
 * <p>--mode: "sync" (the default) sends with send(message), which the client retries on another broker
 * (retryTimesWhenSendFailed); "async" with send(message, callback), judged by its callback; "oneway" with
 * sendOneway(message), which no broker acknowledges: a oneway send that returned is journaled ok, and only reading the
 * topic tells whether it was stored. Async and oneway events carry no attempts: the send-message hook sees an async
 * send's first request only, not its outcome or its retries.
 *
 * <p>Each acknowledged send carries its SendResult's status (SEND_OK, or SLAVE_NOT_AVAILABLE, FLUSH_SLAVE_TIMEOUT,
 * FLUSH_DISK_TIMEOUT: stored, less durably) and each sync attempt the status its broker answered with.
 * --retry-another-broker-when-not-store-ok sets retryAnotherBrokerWhenNotStoreOK: a sync send answered with a status
 * other than SEND_OK is sent again to another broker within the same attempts, and returns the last answer.
 *
 * <p>Options: --namesrv, --topic, --group (producer group), --rate (sends/s), --duration (s, counted from the
 * producer's start), --threads (default 64), --mode, --retry-another-broker-when-not-store-ok.
 */
public final class ProbeProducer {
    private static final int SHUTDOWN_SECONDS = 60;

    /**
     * The attempts of the send running on this thread. DefaultMQProducer.send returns only the final outcome (the
     * broker that stored the message, or the last error); the send-message hook, the one message tracing uses, is
     * called before and after every attempt's request, on the sending thread for a synchronous send. An attempt that
     * fails before its request (no route, no broker address, the send timeout already spent) reaches no hook: it
     * shows only in the send's error. Registering it takes getDefaultMQProducerImpl(), deprecated but public in both
     * 4.9 and 5.5; the hook changes nothing in how the client sends.
     */
    private static final class Attempts implements SendMessageHook {
        private final ThreadLocal<List<String>> attempts = ThreadLocal.withInitial(ArrayList::new);
        private final ThreadLocal<long[]> started = ThreadLocal.withInitial(() -> new long[2]);

        @Override
        public String hookName() {
            return "chaos-probe-attempts";
        }

        @Override
        public void sendMessageBefore(SendMessageContext context) {
            started.get()[0] = System.currentTimeMillis();
            started.get()[1] = System.nanoTime();
        }

        @Override
        public void sendMessageAfter(SendMessageContext context) {
            long[] begun = started.get();
            Exception failed = context.getException();
            SendResult answered = failed == null ? context.getSendResult() : null;  // the broker's answer
            attempts.get().add("{\"broker\":" + ProbeJournal.string(context.getMq().getBrokerName())
                    + ",\"started\":" + ProbeJournal.number(ProbeJournal.seconds(begun[0]))
                    + ",\"latency\":" + ProbeJournal.number((System.nanoTime() - begun[1]) / 1e9)
                    + ",\"error\":" + ProbeJournal.string(failed == null ? null : ProbeJournal.error(failed))
                    + ",\"status\":" + ProbeJournal.string(answered == null ? null : status(answered))
                    + "}");
        }

        /** This thread's attempts since the last call, as a JSON array. */
        String take() {
            String taken = "[" + String.join(",", attempts.get()) + "]";
            attempts.get().clear();
            return taken;
        }
    }

    public static void main(String[] args) throws Exception {
        Map<String, String> options = ProbeJournal.options(args);
        String topic = ProbeJournal.required(options, "topic");
        double rate = Double.parseDouble(ProbeJournal.required(options, "rate"));
        long duration = (long) (Double.parseDouble(ProbeJournal.required(options, "duration")) * 1e9);
        String mode = options.getOrDefault("mode", "sync");
        if (!List.of("sync", "async", "oneway").contains(mode)) {
            throw new IllegalArgumentException("--mode is sync, async or oneway, not " + mode);
        }
        DefaultMQProducer producer = new DefaultMQProducer(ProbeJournal.required(options, "group"));
        producer.setNamesrvAddr(ProbeJournal.required(options, "namesrv"));
        producer.setRetryAnotherBrokerWhenNotStoreOK(
                Boolean.parseBoolean(options.getOrDefault("retry-another-broker-when-not-store-ok", "false")));
        Attempts attempts = new Attempts();
        if (mode.equals("sync")) {
            producer.getDefaultMQProducerImpl().registerSendMessageHook(attempts);
        }
        producer.start();
        ExecutorService senders = Executors.newFixedThreadPool(Integer.parseInt(options.getOrDefault("threads", "64")));
        Phaser outstanding = new Phaser(1);  // async sends whose callback has not run yet, and main
        try {
            // The first send goes alone, and the schedule starts when it returns: the client's cold path (route
            // look-up, broker connections, class loading: ~0.6 s here) would otherwise hold back the sends due
            // meanwhile and release them in one burst, which the brokers of a loaded 2-core machine answered with flow
            // control (SYSTEM_BUSY, "TIMEOUT_CLEAN_QUEUE broker busy").
            send(producer, attempts, outstanding, mode, topic, 0);
            long begun = System.nanoTime();
            for (int sequence = 1; sequence / rate * 1e9 < duration; sequence++) {
                TimeUnit.NANOSECONDS.sleep(begun + (long) (sequence / rate * 1e9) - System.nanoTime());
                int number = sequence;
                senders.execute(() -> send(producer, attempts, outstanding, mode, topic, number));
            }
            senders.shutdown();
            if (!senders.awaitTermination(SHUTDOWN_SECONDS, TimeUnit.SECONDS)) {
                throw new IllegalStateException("sends still running " + SHUTDOWN_SECONDS + " s after the last one began");
            }
            outstanding.awaitAdvanceInterruptibly(outstanding.arrive(), SHUTDOWN_SECONDS, TimeUnit.SECONDS);
        } finally {
            producer.shutdown();
        }
        System.out.flush();
    }

    private static void send(DefaultMQProducer producer, Attempts attempts, Phaser outstanding, String mode,
                             String topic, int sequence) {
        Message message = new Message(topic, ("probe-" + sequence).getBytes(StandardCharsets.UTF_8));
        message.setKeys(String.valueOf(sequence));
        // The id a failed send is journaled under; the client keeps an id that is already set.
        MessageClientIDSetter.setUniqID(message);
        String msgId = MessageClientIDSetter.getUniqID(message);
        long t = System.currentTimeMillis();
        long begun = System.nanoTime();
        try {
            switch (mode) {
                case "sync" -> {
                    SendResult result = producer.send(message);
                    // A returned result was stored by the broker, as in the Python probe.
                    record(mode, t, begun, result.getMsgId(), attempts.take(), null, status(result));
                }
                case "oneway" -> {
                    producer.sendOneway(message);
                    record(mode, t, begun, msgId, "[]", null, null);
                }
                case "async" -> {
                    outstanding.register();
                    producer.send(message, new SendCallback() {
                        @Override
                        public void onSuccess(SendResult result) {
                            record(mode, t, begun, result.getMsgId(), "[]", null, status(result));
                            outstanding.arriveAndDeregister();
                        }

                        @Override
                        public void onException(Throwable failed) {
                            record(mode, t, begun, msgId, "[]", ProbeJournal.error(failed), null);
                            outstanding.arriveAndDeregister();
                        }
                    });
                }
            }
        } catch (Exception failed) {  // MQClientException, RemotingException, MQBrokerException, InterruptedException
            if (mode.equals("async")) {  // refused before it was under way: no callback will come
                outstanding.arriveAndDeregister();
            }
            record(mode, t, begun, msgId, attempts.take(), ProbeJournal.error(failed), null);
        }
    }

    /** The result's SendStatus by name, as the journal spells it; null when the client gave none. */
    private static String status(SendResult result) {
        return result.getSendStatus() == null ? null : result.getSendStatus().name();
    }

    private static void record(String mode, long t, long begun, String msgId, String attempts, String error,
                               String status) {
        double latency = (System.nanoTime() - begun) / 1e9;
        ProbeJournal.print("{\"kind\":\"send\",\"t\":" + ProbeJournal.number(ProbeJournal.seconds(t))
                + ",\"msg_id\":" + ProbeJournal.string(msgId) + ",\"ok\":" + (error == null)
                + ",\"latency\":" + ProbeJournal.number(latency) + ",\"attempts\":" + attempts
                + ",\"error\":" + ProbeJournal.string(error) + ",\"mode\":" + ProbeJournal.string(mode)
                + ",\"status\":" + ProbeJournal.string(status) + "}");
    }
}
