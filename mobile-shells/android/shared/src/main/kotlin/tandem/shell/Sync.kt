// The sync screen: what waits to upload, what the server refused, and the E03 deadlines,
// all from core's outbox. The platform's scheduler (WorkManager, background URLSession)
// only decides when to call `sync_now`.
package tandem.shell

import java.time.ZoneId
import tandem.SyncRound
import tandem.SyncState

/** The sync screen. */
data class SyncScreenState(
    val headline: String,
    val lines: List<String>,
    /** E03 warnings and blocks, each with its rule id. */
    val deadlines: List<RuleLine>,
    /** Whether the screen offers "Sync now" prominently (something is waiting). */
    val needsSync: Boolean,
) {
    companion object {
        /** Builds the screen from core's status. */
        fun of(s: SyncState, zone: ZoneId): SyncScreenState {
            val headline = when {
                !s.enrolled -> "This phone is not enrolled"
                s.pending > 0u -> "${plural(s.pending, "visit")} waiting to upload"
                s.quarantined > 0u -> "The server refused ${plural(s.quarantined, "visit")}"
                else -> "Everything is uploaded"
            }
            val lines = buildList {
                if (s.pending > 0u) add("${Format.bytes(s.bytesLeft.toLong())} left to send")
                s.oldestPendingSealedMs?.let { add("Oldest sealed at ${Format.dateTime(it, zone)}") }
                s.nextAttemptMs?.let { add("Next try at ${Format.clock(it, zone)}") }
                s.lastError?.let { add("Last error: $it") }
                if (s.quarantined > 0u) add("${plural(s.quarantined, "refused visit")} kept on this phone for review")
                if (s.acknowledged > 0u) add("${plural(s.acknowledged, "visit")} received by the server")
            }
            return SyncScreenState(headline, lines, s.deadlines.map(RuleLine::of), s.enrolled && s.pending > 0u)
        }

        private fun plural(n: UInt, word: String): String = "$n $word" + (if (n == 1u) "" else "s")
    }
}

/** What one sync round did, in one line for a notification or a snackbar. */
fun roundSummary(round: SyncRound): String {
    val parts = buildList {
        val fetched = round.pulled.assignments.size
        if (fetched > 0) add("$fetched new visit" + (if (fetched == 1) "" else "s"))
        if (round.pushed.acknowledged > 0u) add("${round.pushed.acknowledged} uploaded")
        if (round.pushed.quarantined > 0u) add("${round.pushed.quarantined} refused by the server")
        if (round.pushed.deferred > 0u) add("${round.pushed.deferred} to retry")
        if (round.purgedVisits > 0u) add("media of ${round.purgedVisits} removed from this phone")
    }
    return if (parts.isEmpty()) "Up to date" else parts.joinToString(", ")
}
