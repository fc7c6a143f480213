package dev.jtune.data.template.jinja;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** strftime_now's clock pinned by {@code -Djtune.strftimeNow}, as the build pins it for the fixtures' day. */
class StrftimeNowTest {
    @Test
    void thePinnedClockIsRead() {
        String saved = System.getProperty(Strftime.NOW_PROPERTY);
        try {
            System.setProperty(Strftime.NOW_PROPERTY, "2024-07-23T09:05:00");
            assertEquals("23 Jul 2024", Strftime.now("%d %b %Y"));
            assertEquals("2024-07-23 09:05", Strftime.now("%Y-%m-%d %H:%M"));
            System.setProperty(Strftime.NOW_PROPERTY, "yesterday");
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Strftime.now("%d"));
            assertTrue(e.getMessage().contains("-Djtune.strftimeNow=yesterday"), e.getMessage());
        } finally {
            if (saved == null) {
                System.clearProperty(Strftime.NOW_PROPERTY);
            } else {
                System.setProperty(Strftime.NOW_PROPERTY, saved);
            }
        }
    }
}
