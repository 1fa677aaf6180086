// How the screens write money, card numbers, times and durations. Display only: amounts
// stay in fen (Long) everywhere else, and nothing here decides a rule.
package tandem.shell

import java.time.Instant
import java.time.ZoneId
import java.time.format.DateTimeFormatter

/** Money and numbers as the agent and the payer read them. */
object Format {
    /** `123456` fen → `¥1,234.56`; negative amounts keep their sign in front (`-¥0.05`). */
    fun yuan(fen: Long): String {
        // Long.MIN_VALUE has no positive counterpart: written from its digits directly.
        val negative = fen < 0
        val digits = if (fen == Long.MIN_VALUE) "9223372036854775808" else kotlin.math.abs(fen).toString()
        val padded = digits.padStart(3, '0')
        val whole = padded.dropLast(2)
        val cents = padded.takeLast(2)
        val grouped = whole.reversed().chunked(3).joinToString(",").reversed()
        return (if (negative) "-¥" else "¥") + grouped + "." + cents
    }

    /**
     * What the agent typed as an amount in yuan (`500`, `1,234.5`, `¥80.00`) in fen, or null
     * when it is not an amount: no sign, at most two decimals, no floating point on the way.
     */
    fun parseYuan(text: String): Long? {
        val cleaned = text.trim().removePrefix("¥").replace(",", "").trim()
        val match = Regex("""(\d{1,13})(?:\.(\d{1,2}))?""").matchEntire(cleaned) ?: return null
        val whole = match.groupValues[1].toLong()
        val cents = match.groupValues[2].padEnd(2, '0').toLong()
        return whole * 100 + cents
    }

    /**
     * Masks every digit but the last [keepLast] (`6222021000123456789` → `***************6789`),
     * keeping spaces and dashes so grouped numbers stay grouped. Text core already masked
     * passes unchanged, so the screens can apply it to any number they show (A01).
     */
    fun maskNumber(text: String, keepLast: Int = 4): String {
        val digits = text.count { it.isDigit() }
        var seen = 0
        return buildString {
            for (c in text) {
                if (c.isDigit()) {
                    seen++
                    append(if (seen > digits - keepLast) c else '*')
                } else {
                    append(c)
                }
            }
        }
    }

    /** A duration for the agent: `45 s`, `12 min 03 s`, `1 h 05 min`; negative is `0 s`. */
    fun duration(ms: Long): String {
        val s = maxOf(ms, 0L) / 1000
        return when {
            s < 60 -> "$s s"
            s < 3600 -> "${s / 60} min ${twoDigits(s % 60)} s"
            else -> "${s / 3600} h ${twoDigits(s / 60 % 60)} min"
        }
    }

    private fun twoDigits(n: Long): String = n.toString().padStart(2, '0')

    /** A byte count: `512 B`, `3.4 KB`, `12.0 MB` (decimal units, as phones show storage). */
    fun bytes(n: Long): String {
        if (n < 1000) return "$n B"
        val units = listOf("KB", "MB", "GB", "TB")
        var value = n.toDouble() / 1000
        var unit = 0
        while (value >= 999.95 && unit < units.lastIndex) {
            value /= 1000
            unit++
        }
        return "%.1f %s".format(java.util.Locale.ROOT, value, units[unit])
    }

    private val clock = DateTimeFormatter.ofPattern("HH:mm")
    private val dayClock = DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm")

    /** A time of day in [zone] (`10:05`). */
    fun clock(ms: Long, zone: ZoneId): String = clock.format(Instant.ofEpochMilli(ms).atZone(zone))

    /** A date and time in [zone] (`2026-11-30 10:05`). */
    fun dateTime(ms: Long, zone: ZoneId): String =
        dayClock.format(Instant.ofEpochMilli(ms).atZone(zone))
}
