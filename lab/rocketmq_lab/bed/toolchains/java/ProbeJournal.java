import java.util.HashMap;
import java.util.Locale;
import java.util.Map;

/**
 * What the chaos probe programs share: their command line and the journal lines they print.
 *
 * <p>Each event is one line of chaos/rocketmq_chaos/journal.py's JSON on stdout, so the Python side reads the official
 * client's run with the journal's own parser. Times are wall-clock seconds, like the journal's.
 */
final class ProbeJournal {
    private ProbeJournal() {
    }

    /** {@code --name value} options; a bare {@code --flag} (followed by nothing or by another option) is "true". */
    static Map<String, String> options(String[] args) {
        Map<String, String> options = new HashMap<>();
        for (int index = 0; index < args.length; index++) {
            if (!args[index].startsWith("--")) {
                throw new IllegalArgumentException("expected an --option, got " + args[index]);
            }
            boolean flag = index + 1 == args.length || args[index + 1].startsWith("--");
            options.put(args[index].substring(2), flag ? "true" : args[++index]);
        }
        return options;
    }

    static String required(Map<String, String> options, String name) {
        String value = options.get(name);
        if (value == null) {
            throw new IllegalArgumentException("missing --" + name);
        }
        return value;
    }

    static double seconds(long millis) {
        return millis / 1000.0;
    }

    static String number(double value) {
        return String.format(Locale.ROOT, "%.6f", value);
    }

    /** A JSON string, or null. */
    static String string(String value) {
        if (value == null) {
            return "null";
        }
        StringBuilder json = new StringBuilder(value.length() + 2).append('"');
        for (char c : value.toCharArray()) {
            switch (c) {
                case '"' -> json.append("\\\"");
                case '\\' -> json.append("\\\\");
                case '\n' -> json.append("\\n");
                case '\r' -> json.append("\\r");
                case '\t' -> json.append("\\t");
                default -> {
                    if (c < 0x20) {
                        json.append(String.format(Locale.ROOT, "\\u%04x", (int) c));
                    } else {
                        json.append(c);
                    }
                }
            }
        }
        return json.append('"').toString();
    }

    static String error(Throwable error) {
        return error.getClass().getSimpleName() + ": " + error.getMessage();
    }

    /** One event a line, whole: println holds the stream's lock, so threads never interleave within a line. */
    static void print(String event) {
        System.out.println(event);
    }
}
