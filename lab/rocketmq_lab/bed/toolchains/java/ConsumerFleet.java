import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import org.apache.rocketmq.client.consumer.DefaultMQPushConsumer;
import org.apache.rocketmq.client.consumer.listener.ConsumeConcurrentlyStatus;
import org.apache.rocketmq.client.consumer.listener.MessageListenerConcurrently;

/**
 * Many live consumer groups from one JVM, for benchmarks of what live clients cost the operator: one official
 * DefaultMQPushConsumer per group, all of one topic, sharing one client instance (one connection per broker, one
 * heartbeat for all groups) and one consume thread each. Prints "started N" once every consumer is started, then
 * runs for the duration (s).
 *
 * <p>Options: --namesrv, --topic, --groups (comma-separated), --duration.
 */
public final class ConsumerFleet {
    public static void main(String[] args) throws Exception {
        Map<String, String> options = ProbeJournal.options(args);
        List<DefaultMQPushConsumer> consumers = new ArrayList<>();
        for (String group : ProbeJournal.required(options, "groups").split(",")) {
            DefaultMQPushConsumer consumer = new DefaultMQPushConsumer(group);
            consumer.setNamesrvAddr(ProbeJournal.required(options, "namesrv"));
            consumer.setInstanceName("fleet");
            consumer.setConsumeThreadMin(1);
            consumer.setConsumeThreadMax(1);
            consumer.subscribe(ProbeJournal.required(options, "topic"), "*");
            consumer.registerMessageListener(
                    (MessageListenerConcurrently) (messages, context) -> ConsumeConcurrentlyStatus.CONSUME_SUCCESS);
            consumer.start();
            consumers.add(consumer);
        }
        System.out.println("started " + consumers.size());
        System.out.flush();
        try {
            TimeUnit.MILLISECONDS.sleep((long) (Double.parseDouble(ProbeJournal.required(options, "duration")) * 1000));
        } finally {
            consumers.forEach(DefaultMQPushConsumer::shutdown);
        }
        System.exit(0);
    }
}
