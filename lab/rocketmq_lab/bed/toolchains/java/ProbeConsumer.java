import java.io.IOException;
import java.io.InputStream;
import java.lang.reflect.Method;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;
import org.apache.rocketmq.client.consumer.listener.ConsumeOrderlyStatus;
import org.apache.rocketmq.client.consumer.listener.MessageListenerConcurrently;
import org.apache.rocketmq.client.consumer.listener.MessageListenerOrderly;
import org.apache.rocketmq.common.consumer.ConsumeFromWhere;
import org.apache.rocketmq.common.message.MessageConst;
import org.apache.rocketmq.common.message.MessageExt;
import org.apache.rocketmq.common.message.MessageQueue;

/**
 * Chaos probe with the official push consumer, so retry verdicts hold for the client applications run: a
 * DefaultMQPushConsumer with its default retry settings fails every delivery of a topic on purpose, prints one journal
 * "receive" event per delivery, and stops after a duration (counted from its start). It reads from the first offset,
 * so messages sent before it started are delivered too, and posts its subscription with every pull (see main).
 *
 * <p>Modes: by default CLUSTERING and concurrent, returning RECONSUME_LATER: the client sends the message back with its
 * own maxReconsumeTimes (default -1, meaning 16), which overrides the group's retryMaxTimes, and the broker redelivers it
 * through %RETRY%group on the delay-level ladder. --orderly returns SUSPEND_CURRENT_QUEUE_A_MOMENT: the client
 * redelivers in place every suspendCurrentQueueTimeMillis (1 s), without the broker, with no limit by default.
 * --broadcast consumes concurrently in BROADCASTING: the client drops a failed message.
 *
 * <p>An event's topic and broker are those of the queue the delivery was pulled from, as the Python probes record them:
 * the client hands a retry to the listener under its original topic, so only the queue shows it came from the retry
 * topic.
 *
 * <p>A concurrent consumer fails each message the way its body names, as applications do: "throw" (the listener
 * throws), "null" (it returns null), "overrun" (its first delivery outlives consumeTimeout: the listener sleeps
 * --overrun-seconds, then returns RECONSUME_LATER), anything else RECONSUME_LATER. Each failure it hands back to the
 * client is a journal "hand_back" event, printed as the listener ends.
 *
 * <p>Options: --namesrv, --topic, --group, --duration (s: the longest run), --until-eof (the run also ends when stdin
 * closes, so the caller stops it on what it observed), --orderly or --broadcast, --max-reconsume-times N
 * (setMaxReconsumeTimes; unset, the client's default -1 stands), --consume-timeout M (setConsumeTimeout, minutes),
 * --overrun-seconds S.
 */
public final class ProbeConsumer {
    public static void main(String[] args) throws Exception {
        Map<String, String> options = ProbeJournal.options(args);
        DefaultMQPushConsumer consumer = new DefaultMQPushConsumer(ProbeJournal.required(options, "group"));
        consumer.setNamesrvAddr(ProbeJournal.required(options, "namesrv"));
        consumer.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        // Every pull carries the subscription, so the broker need not hold the client's latest subscription version.
        // Without it a new consumer's first retries can wait 30 s: the heartbeat that brings the broker the version a
        // start-up rebalance gave the retry topic is skipped when another heartbeat holds the client's lock
        // (MQClientInstance.sendHeartbeatToAllBrokerWithLock tries it once: "lock heartBeat, but failed"), and the
        // broker refuses the retry topic's pulls (SUBSCRIPTION_NOT_LATEST, PullMessageProcessor) until the next
        // periodic heartbeat. Seen in CI on 5.5.0: no retry within 14 s. Retry behaviour is unchanged.
        consumer.setPostSubscriptionWhenPull(true);
        consumer.subscribe(ProbeJournal.required(options, "topic"), "*");
        if (options.containsKey("max-reconsume-times")) {
            consumer.setMaxReconsumeTimes(Integer.parseInt(options.get("max-reconsume-times")));
        }
        if (options.containsKey("consume-timeout")) {
            consumer.setConsumeTimeout(Long.parseLong(options.get("consume-timeout")));
        }
        long overrunMillis = (long) (Double.parseDouble(options.getOrDefault("overrun-seconds", "0")) * 1000);
        if (options.containsKey("orderly")) {
            consumer.registerMessageListener((MessageListenerOrderly) (messages, context) -> {
                record(messages, context.getMessageQueue());
                return ConsumeOrderlyStatus.SUSPEND_CURRENT_QUEUE_A_MOMENT;
            });
        } else {
            if (options.containsKey("broadcast")) {
                broadcast(consumer);
            }
            consumer.registerMessageListener((MessageListenerConcurrently) (messages, context) -> {
                record(messages, context.getMessageQueue());
                return fail(messages, overrunMillis);
            });
        }
        CountDownLatch ended = new CountDownLatch(1);
        if (options.containsKey("until-eof")) {
            Thread reader = new Thread(() -> {
                drain(System.in);
                ended.countDown();
            }, "until-eof");
            reader.setDaemon(true);
            reader.start();
        }
        consumer.start();
        try {
            ended.await((long) (Double.parseDouble(ProbeJournal.required(options, "duration")) * 1000),
                    TimeUnit.MILLISECONDS);
        } finally {
            consumer.shutdown();
        }
        System.out.flush();
        // The run is over: end the JVM even though a client thread lingers. The 5.x orderly push consumer never shuts
        // down the scheduler of its (unused) pop service, ConsumeMessagePopOrderlyService, so the JVM would not exit.
        System.exit(0);
    }

    /**
     * Fails the delivery (one message: the default consumeMessageBatchMaxSize) the way its body names; journals the
     * hand-back just before the listener ends, so the client's send-back follows within milliseconds.
     */
    private static ConsumeConcurrentlyStatus fail(List<MessageExt> messages, long overrunMillis) {
        MessageExt message = messages.get(0);
        String how = new String(message.getBody(), StandardCharsets.UTF_8);
        if (how.equals("overrun") && message.getReconsumeTimes() == 0) {
            try {
                TimeUnit.MILLISECONDS.sleep(overrunMillis);
            } catch (InterruptedException interrupted) {  // the consumer shuts down: end as a failure all the same
                Thread.currentThread().interrupt();
            }
        }
        handBack(messages);
        return switch (how) {
            case "throw" -> throw new IllegalStateException("the probe fails this delivery by throwing");
            case "null" -> null;
            default -> ConsumeConcurrentlyStatus.RECONSUME_LATER;
        };
    }

    private static void handBack(List<MessageExt> messages) {
        double t = ProbeJournal.seconds(System.currentTimeMillis());
        for (MessageExt message : messages) {
            ProbeJournal.print("{\"kind\":\"hand_back\",\"t\":" + ProbeJournal.number(t)
                    + ",\"msg_id\":" + ProbeJournal.string(message.getMsgId())
                    + ",\"reconsume_times\":" + message.getReconsumeTimes() + "}");
        }
    }

    /** Reads `in` to its end (or its first error: the caller can no longer close it either). */
    private static void drain(InputStream in) {
        byte[] buffer = new byte[256];
        try {
            while (in.read(buffer) >= 0) {
                continue;
            }
        } catch (IOException closed) {
            return;
        }
    }

    private static void record(List<MessageExt> messages, MessageQueue queue) {
        double t = ProbeJournal.seconds(System.currentTimeMillis());
        for (MessageExt message : messages) {
            ProbeJournal.print("{\"kind\":\"receive\",\"t\":" + ProbeJournal.number(t)
                    + ",\"msg_id\":" + ProbeJournal.string(message.getMsgId())
                    + ",\"topic\":" + ProbeJournal.string(queue.getTopic())
                    + ",\"broker\":" + ProbeJournal.string(queue.getBrokerName())
                    + ",\"reconsume_times\":" + message.getReconsumeTimes()
                    + ",\"stored_at\":" + ProbeJournal.number(ProbeJournal.seconds(message.getStoreTimestamp()))
                    + ",\"origin_msg_id\":"
                    + ProbeJournal.string(message.getProperty(MessageConst.PROPERTY_ORIGIN_MESSAGE_ID)) + "}");
        }
    }

    /** MessageModel moved from rocketmq-common (4.x) to rocketmq-remoting (5.x); the setter's own type serves both. */
    private static void broadcast(DefaultMQPushConsumer consumer) throws ReflectiveOperationException {
        for (Method setter : DefaultMQPushConsumer.class.getMethods()) {
            if (setter.getName().equals("setMessageModel")) {
                for (Object model : setter.getParameterTypes()[0].getEnumConstants()) {
                    if (((Enum<?>) model).name().equals("BROADCASTING")) {
                        setter.invoke(consumer, model);
                        return;
                    }
                }
            }
        }
        throw new NoSuchMethodException("DefaultMQPushConsumer.setMessageModel(BROADCASTING)");
    }
}
