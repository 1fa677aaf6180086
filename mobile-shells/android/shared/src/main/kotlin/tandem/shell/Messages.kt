// Rule findings and errors as the screens show them: always with the rule id, so an agent
// can quote it to a manager, and never with a stack trace.
package tandem.shell

import tandem.Outcome
import tandem.RuleViolation
import tandem.TandemException

/** One line about a rule: `V04` · `warning` · what core wrote. */
data class RuleLine(val rule: String, val outcome: Outcome, val text: String) {
    /** `V04 warning: Visiting hours end at 21:00 …`. */
    fun display(): String = "$rule ${outcomeWord(outcome)}: $text"

    companion object {
        /** A finding core returned. */
        fun of(v: RuleViolation): RuleLine = RuleLine(v.rule, v.outcome, v.message)
    }
}

/** The word for an outcome, as the agent reads it. */
fun outcomeWord(outcome: Outcome): String = when (outcome) {
    Outcome.BLOCK -> "blocked"
    Outcome.WARN -> "warning"
    Outcome.FLAG -> "flagged"
}

/** What went wrong, sorted by what the agent can do about it. */
sealed class ShellError {
    /** The text the screen shows. */
    abstract val text: String

    /** A rule blocked the action: shown with its id; nothing was written. */
    data class Refused(val rule: String, override val text: String) : ShellError()

    /** Enrol first (sign-in screen). */
    data class NotEnrolled(override val text: String) : ShellError()

    /** Sync first, or fill in what is missing. */
    data class NotReady(override val text: String) : ShellError()

    /** Wrong moment for the action (the visit moved on), or nothing to act on. */
    data class NotNow(override val text: String) : ShellError()

    /** Bad input: a code that is not a Tandem code, a photo that is not a photo. */
    data class Invalid(override val text: String) : ShellError()

    /** No network, or the server failed: try again later. [status] is 0 without an answer. */
    data class Offline(val status: Int, override val text: String) : ShellError()

    /** The user cancelled. */
    data object Cancelled : ShellError() {
        override val text = "Cancelled."
    }

    /** Something that should not happen: altered data, a full disk, a broken key store.
     *  The agent reports it; the text says which. */
    data class Fault(val kind: String, override val text: String) : ShellError()

    /** The line the screen shows: the rule badge first when a rule refused. */
    fun display(): String = when (this) {
        is Refused -> "$rule blocked: $text"
        else -> text
    }

    /** Whether trying the same thing again later may work (the sync screen's retry button). */
    val retryable: Boolean get() = this is Offline || this is Cancelled

    companion object {
        /** Maps the one public error of the bindings. */
        fun of(e: TandemException): ShellError = when (e) {
            is TandemException.Refused -> Refused(e.rule, e.reason)
            is TandemException.NotEnrolled -> NotEnrolled(e.reason)
            is TandemException.NotReady -> NotReady(e.reason)
            is TandemException.InvalidState -> NotNow(e.reason)
            is TandemException.NotFound -> NotNow(e.reason)
            is TandemException.Invalid -> Invalid(e.reason)
            is TandemException.Network -> Offline(0, e.reason)
            is TandemException.Server -> Offline(e.status.toInt(), e.reason)
            is TandemException.Protocol -> Fault("protocol", e.reason)
            is TandemException.Integrity -> Fault("integrity", e.reason)
            is TandemException.Storage -> Fault("storage", e.reason)
            is TandemException.Platform -> Fault("platform", e.reason)
            is TandemException.Cancelled -> Cancelled
        }
    }
}

/** The answer of one call into core: its value, or the error the screen shows. */
sealed class Answer<out T> {
    /** The call returned [value]. */
    data class Done<out T>(val value: T) : Answer<T>()

    /** The call failed with [error]. */
    data class Failed(val error: ShellError) : Answer<Nothing>()

    /** The value, or null when the call failed. */
    fun valueOrNull(): T? = (this as? Done)?.value

    /** The error, or null when the call succeeded. */
    fun errorOrNull(): ShellError? = (this as? Failed)?.error
}

/** Runs [call], mapping a [TandemException] to the [ShellError] the screen shows; anything
 *  else is a bug in the shell and propagates. */
inline fun <T> attempt(call: () -> T): Answer<T> = try {
    Answer.Done(call())
} catch (e: TandemException) {
    Answer.Failed(ShellError.of(e))
}
