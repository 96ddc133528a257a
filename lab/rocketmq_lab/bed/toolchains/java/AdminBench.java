import java.lang.reflect.Method;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;

import org.apache.rocketmq.client.producer.DefaultMQProducer;
import org.apache.rocketmq.client.producer.SendResult;
import org.apache.rocketmq.client.producer.SendStatus;
import org.apache.rocketmq.common.message.Message;
import org.apache.rocketmq.tools.admin.DefaultMQAdminExt;

/**
 * The official Java clients' side of bench/bench_protocol.py, in one warm JVM: update-subgroup round trips through
 * DefaultMQAdminExt and synchronous sends through DefaultMQProducer, each timed call by call after a warm-up.
 *
 * <p>Arguments are name=value pairs: namesrv, broker (address the groups are written to), groupPrefix, groups (call i
 * writes group groupPrefix + (i % groups), so the broker's table, which it persists whole on every update, keeps one
 * size), calls, topic, messages, messageBytes, warmup. Prints one JSON line: the Java version and, per operation,
 * count, p50/p99/mean in ms (nearest rank, as the Python side computes them) and ops/s over the timed loop.
 */
public final class AdminBench {
    // SubscriptionGroupConfig moved from rocketmq-common (4.x) to rocketmq-remoting (5.x); reflection serves both.
    private static final String[] GROUP_CONFIG_CLASSES = {
        "org.apache.rocketmq.remoting.protocol.subscription.SubscriptionGroupConfig",
        "org.apache.rocketmq.common.subscription.SubscriptionGroupConfig",
    };

    private interface Call {
        void run(int index) throws Exception;
    }

    public static void main(String[] args) throws Exception {
        Map<String, String> options = new HashMap<>();
        for (String arg : args) {
            int equals = arg.indexOf('=');
            options.put(arg.substring(0, equals), arg.substring(equals + 1));
        }
        int warmup = Integer.parseInt(options.get("warmup"));
        String updates = updateSubgroup(options.get("namesrv"), options.get("broker"), options.get("groupPrefix"),
                Integer.parseInt(options.get("groups")), Integer.parseInt(options.get("calls")), warmup);
        String sends = send(options.get("namesrv"), options.get("topic"), Integer.parseInt(options.get("messages")),
                Integer.parseInt(options.get("messageBytes")), warmup);
        System.out.printf("{\"java\": \"%s\", \"update_subgroup\": %s, \"send\": %s}%n",
                System.getProperty("java.version"), updates, sends);
    }

    private static String updateSubgroup(String namesrv, String broker, String groupPrefix, int groups, int calls,
                                         int warmup) throws Exception {
        Class<?> configClass = groupConfigClass();
        Method update = DefaultMQAdminExt.class.getMethod(
                "createAndUpdateSubscriptionGroupConfig", String.class, configClass);
        Object[] configs = new Object[groups];
        for (int index = 0; index < groups; index++) {
            configs[index] = configClass.getConstructor().newInstance();
            configClass.getMethod("setGroupName", String.class).invoke(configs[index], groupPrefix + index);
            configClass.getMethod("setRetryMaxTimes", int.class).invoke(configs[index], 1 + index % 16);
        }
        DefaultMQAdminExt admin = new DefaultMQAdminExt(10_000);
        admin.setNamesrvAddr(namesrv);
        admin.start();
        try {
            return timed(index -> update.invoke(admin, broker, configs[index % groups]), calls, warmup);
        } finally {
            admin.shutdown();
        }
    }

    private static String send(String namesrv, String topic, int messages, int messageBytes, int warmup)
            throws Exception {
        DefaultMQProducer producer = new DefaultMQProducer("bench_java_producer");
        producer.setNamesrvAddr(namesrv);
        producer.start();
        byte[] body = new byte[messageBytes];
        try {
            return timed(index -> {
                SendResult result = producer.send(new Message(topic, body));
                if (result.getSendStatus() != SendStatus.SEND_OK) {
                    throw new IllegalStateException("send stored as " + result.getSendStatus());
                }
            }, messages, warmup);
        } finally {
            producer.shutdown();
        }
    }

    private static Class<?> groupConfigClass() throws ClassNotFoundException {
        for (String name : GROUP_CONFIG_CLASSES) {
            try {
                return Class.forName(name);
            } catch (ClassNotFoundException absent) {
                // the other RocketMQ line
            }
        }
        throw new ClassNotFoundException(String.join(" or ", GROUP_CONFIG_CLASSES));
    }

    private static String timed(Call call, int count, int warmup) throws Exception {
        for (int index = 0; index < warmup; index++) {
            call.run(index);
        }
        long[] latencies = new long[count];
        long begun = System.nanoTime();
        for (int index = 0; index < count; index++) {
            long started = System.nanoTime();
            call.run(index);
            latencies[index] = System.nanoTime() - started;
        }
        long elapsed = System.nanoTime() - begun;
        Arrays.sort(latencies);
        return String.format(Locale.ROOT,
                "{\"count\": %d, \"p50_ms\": %.3f, \"p99_ms\": %.3f, \"mean_ms\": %.3f, \"ops_per_s\": %.1f}",
                count, percentile(latencies, 0.50) / 1e6, percentile(latencies, 0.99) / 1e6,
                Arrays.stream(latencies).average().orElse(0) / 1e6, count / (elapsed / 1e9));
    }

    /** Nearest rank: the smallest latency with at least `q` of the calls at or below it. */
    private static long percentile(long[] sorted, double q) {
        return sorted[Math.max((int) Math.ceil(q * sorted.length), 1) - 1];
    }
}
