package dev.jtune.data.template.jinja;

import java.time.LocalDateTime;
import java.time.format.TextStyle;
import java.util.Locale;

/** transformers' {@code strftime_now(format)}: Python's {@code datetime.now().strftime(format)}. */
final class Strftime {
    private Strftime() {}

    /**
     * A system property that pins the clock {@code strftime_now} reads (an ISO local date-time, e.g.
     * {@code 2026-12-06T12:00:00}): templates such as Llama 3.1's and gpt-oss's write today's date, so a render, the
     * prepared-data cache key and the fixtures rendered on one day would otherwise change at midnight.
     */
    static final String NOW_PROPERTY = "jtune.strftimeNow";

    static String now(String format) {
        return format(clock(), format);
    }

    private static LocalDateTime clock() {
        String pinned = System.getProperty(NOW_PROPERTY);
        if (pinned == null || pinned.isBlank()) {
            return LocalDateTime.now();
        }
        try {
            return LocalDateTime.parse(pinned.strip());
        } catch (java.time.format.DateTimeParseException e) {
            throw new IllegalArgumentException("-D" + NOW_PROPERTY + "=" + pinned + ": expected an ISO local date-time"
                    + " such as 2026-12-06T12:00:00", e);
        }
    }

    static String format(LocalDateTime t, String f) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < f.length(); i++) {
            char c = f.charAt(i);
            if (c != '%' || i + 1 >= f.length()) {
                sb.append(c);
                continue;
            }
            char d = f.charAt(++i);
            switch (d) {
                case 'd' -> sb.append(String.format("%02d", t.getDayOfMonth()));
                case 'm' -> sb.append(String.format("%02d", t.getMonthValue()));
                case 'Y' -> sb.append(t.getYear());
                case 'y' -> sb.append(String.format("%02d", t.getYear() % 100));
                case 'H' -> sb.append(String.format("%02d", t.getHour()));
                case 'I' -> sb.append(String.format("%02d", (t.getHour() + 11) % 12 + 1));
                case 'p' -> sb.append(t.getHour() < 12 ? "AM" : "PM");
                case 'M' -> sb.append(String.format("%02d", t.getMinute()));
                case 'S' -> sb.append(String.format("%02d", t.getSecond()));
                case 'j' -> sb.append(String.format("%03d", t.getDayOfYear()));
                case 'b' -> sb.append(t.getMonth().getDisplayName(TextStyle.SHORT, Locale.ENGLISH));
                case 'B' -> sb.append(t.getMonth().getDisplayName(TextStyle.FULL, Locale.ENGLISH));
                case 'a' -> sb.append(t.getDayOfWeek().getDisplayName(TextStyle.SHORT, Locale.ENGLISH));
                case 'A' -> sb.append(t.getDayOfWeek().getDisplayName(TextStyle.FULL, Locale.ENGLISH));
                case '%' -> sb.append('%');
                default -> sb.append('%').append(d);
            }
        }
        return sb.toString();
    }
}
