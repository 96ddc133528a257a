import java.lang.reflect.Method;
import java.util.List;
import java.util.Map;
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
 * so messages sent before it started are delivered too.
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
 * <p>Options: --namesrv, --topic, --group, --duration (s), --orderly or --broadcast, and --max-reconsume-times N
 * (setMaxReconsumeTimes; unset, the client's default -1 stands).
 */
public final class ProbeConsumer {
    public static void main(String[] args) throws Exception {
        Map<String, String> options = ProbeJournal.options(args);
        DefaultMQPushConsumer consumer = new DefaultMQPushConsumer(ProbeJournal.required(options, "group"));
        consumer.setNamesrvAddr(ProbeJournal.required(options, "namesrv"));
        consumer.setConsumeFromWhere(ConsumeFromWhere.CONSUME_FROM_FIRST_OFFSET);
        consumer.subscribe(ProbeJournal.required(options, "topic"), "*");
        if (options.containsKey("max-reconsume-times")) {
            consumer.setMaxReconsumeTimes(Integer.parseInt(options.get("max-reconsume-times")));
        }
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
                return ConsumeConcurrentlyStatus.RECONSUME_LATER;
            });
        }
        consumer.start();
        try {
            TimeUnit.MILLISECONDS.sleep((long) (Double.parseDouble(ProbeJournal.required(options, "duration")) * 1000));
        } finally {
            consumer.shutdown();
        }
        System.out.flush();
        // The run is over: end the JVM even though a client thread lingers. The 5.x orderly push consumer never shuts
        // down the scheduler of its (unused) pop service, ConsumeMessagePopOrderlyService, so the JVM would not exit.
        System.exit(0);
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
