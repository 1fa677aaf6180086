// The two-phone handshake as the screens drive it (DESIGN.md §5): the lead shows its
// challenge as cycling QR codes and scans the reply; the partner scans, reads the summary
// core checked, agrees, and shows its reply. Core builds, checks and signs everything; the
// shell only moves codes between the camera, the screen and core.
package tandem.shell

import java.time.ZoneId
import tandem.ChallengeReview
import tandem.ChallengeView
import tandem.CoSignPurpose
import tandem.Completion
import tandem.FrameAssembler
import tandem.FrameProgress
import tandem.PaymentMethod
import tandem.PersonMet
import tandem.TandemPhone

/** Which frame of a multi-frame code to show at a moment: each stays [periodMs] on screen,
 *  long enough for a camera to focus and read it. */
class QrCycle(val frames: List<String>, val periodMs: Long = 400) {
    init {
        require(frames.isNotEmpty()) { "a code has at least one frame" }
        require(periodMs > 0) { "a frame stays on screen for some time" }
    }

    /** The frame index to show [elapsedMs] after the code first appeared. */
    fun indexAt(elapsedMs: Long): Int = (Math.floorMod(elapsedMs / periodMs, frames.size.toLong())).toInt()

    /** The frame text to show [elapsedMs] after the code first appeared. */
    fun frameAt(elapsedMs: Long): String = frames[indexAt(elapsedMs)]
}

/**
 * Collects the texts the camera reads until a whole message is there. Core's frame
 * assembler reads every text: it counts the frames of one message in any order, refuses
 * what is not a Tandem frame (another QR code in view, a misread), and starts over with a
 * newer message (an old challenge still on a screen does not count). The shell keeps only
 * the progress core reported.
 */
class FrameCollector {
    private var assembler = FrameAssembler()
    private var last = nothingScanned

    /** The whole message once every frame is in, else null. */
    val payload: ByteArray? get() = last.payload

    /** What the scanner overlay says. */
    fun progress(): String =
        if (last.total == 0u) "Point the camera at the other phone's code" else "Scanned ${last.received} of ${last.total}"

    /** Takes one scanned text; returns false when core did not take it as a frame. */
    fun offer(text: String): Boolean = when (val pushed = attempt { assembler.push(text) }) {
        is Answer.Done -> {
            last = pushed.value
            true
        }
        is Answer.Failed -> false
    }

    /** Forgets everything (the user pressed "scan again"). */
    fun reset() {
        assembler.close()
        assembler = FrameAssembler()
        last = nothingScanned
    }

    private companion object {
        val nothingScanned = FrameProgress(0u, 0u, null)
    }
}

/** What a co-signing is for, as the screens name it. */
fun purposeLabel(purpose: CoSignPurpose): String = when (purpose) {
    CoSignPurpose.CHECK_IN -> "Check-in"
    CoSignPurpose.CHECK_OUT -> "Check-out"
    CoSignPurpose.RECEIPT -> "Receipt"
    CoSignPurpose.VOID -> "Void a receipt"
    CoSignPurpose.SEAL -> "Seal the visit"
}

/** The lead phone's side of one co-signing. */
sealed class LeadStep {
    /** Nothing started. */
    data object Idle : LeadStep()

    /** Showing the challenge; scanning the partner's reply ([scan] is its progress). */
    data class ShowingChallenge(val purpose: CoSignPurpose, val code: QrCycle, val scan: String) : LeadStep()

    /** Recorded with both signatures. */
    data class Done(val completion: Completion) : LeadStep()

    /** Refused or failed; [error] says why, with its rule when a rule refused. */
    data class Failed(val error: ShellError) : LeadStep()
}

/**
 * The lead's handshake screen. [start] asks core for the challenge (check-in, check-out,
 * receipt, seal): a refusal (V03, V04, V05, C01, E03…) lands in [LeadStep.Failed] with its
 * rule. The screen shows [LeadStep.ShowingChallenge.code] and feeds every scanned text to
 * [onScanned]; once the reply is whole, core verifies it and records the event.
 */
class LeadHandshake(private val phone: TandemPhone) {
    private val reply = FrameCollector()

    /** Where the handshake stands. */
    var step: LeadStep = LeadStep.Idle
        private set

    /** Starts a co-signing for [purpose] with the frames [begin] gets from core. */
    fun start(purpose: CoSignPurpose, begin: (TandemPhone) -> List<String>): LeadStep {
        reply.reset()
        step = when (val frames = attempt { begin(phone) }) {
            is Answer.Done -> LeadStep.ShowingChallenge(purpose, QrCycle(frames.value), reply.progress())
            is Answer.Failed -> LeadStep.Failed(frames.error)
        }
        return step
    }

    /** Checks in (V02–V06 are core's to check); [outsideFenceReason] when the team stands
     *  outside the geofence and says why (V05). */
    fun checkIn(visitId: String, outsideFenceReason: String? = null): LeadStep =
        start(CoSignPurpose.CHECK_IN) { it.beginCheckIn(visitId, outsideFenceReason) }

    /** Checks out. */
    fun checkOut(visitId: String): LeadStep = start(CoSignPurpose.CHECK_OUT) { it.beginCheckOut(visitId) }

    /** Seals the visit (long: core hashes every item; call off the UI thread). */
    fun seal(visitId: String): LeadStep = start(CoSignPurpose.SEAL) { it.beginSeal(visitId) }

    /** Issues a receipt from [form] (C01/C02 are core's to check). */
    fun receipt(visitId: String, form: ReceiptForm): LeadStep = when (val input = form.toInput()) {
        is Answer.Done -> start(CoSignPurpose.RECEIPT) { it.beginReceipt(visitId, input.value) }
        is Answer.Failed -> LeadStep.Failed(input.error).also { step = it }
    }

    /** Takes one text the camera read while the challenge is on screen. */
    fun onScanned(text: String): LeadStep {
        val showing = step as? LeadStep.ShowingChallenge ?: return step
        if (!reply.offer(text)) return step
        val payload = reply.payload ?: return showing.copy(scan = reply.progress()).also { step = it }
        step = when (val done = attempt { phone.completePayload(payload) }) {
            is Answer.Done -> LeadStep.Done(done.value)
            is Answer.Failed -> LeadStep.Failed(done.error)
        }
        return step
    }

    /** Abandons the co-signing (nothing is recorded until the reply verifies). */
    fun cancel() {
        reply.reset()
        step = LeadStep.Idle
    }
}

/** What the partner's agent reads before agreeing, every line from core's checked summary. */
data class ChallengeSummaryText(val title: String, val lines: List<String>)

/** The summary screen for [view]: purpose, the lead's ids, distance, amounts, expiry. */
fun summaryText(view: ChallengeView, zone: ZoneId): ChallengeSummaryText {
    val lines = mutableListOf(
        "Visit ${shortId(view.visitId)}",
        "Lead agent ${shortId(view.leadAgent)} on phone ${shortId(view.leadDevice)}",
        "Phones ${view.partnerDistanceM} m apart",
        "Statement ${view.statementDigest.take(16)}…",
        "Expires at ${Format.clock(view.expiresAtMs, zone)}",
    )
    view.receipt?.let { r ->
        lines += "Receipt no. ${r.serial}: ${Format.yuan(r.amountFen)} (${r.currency}) ${methodLabel(r.method)}"
        lines += "Paid by ${r.payerName} (${personLabel(r.payerRole)})"
    }
    view.voidReason?.let { lines += "Reason: $it" }
    return ChallengeSummaryText(purposeLabel(view.purpose), lines)
}

/** Cash or cheque. */
fun methodLabel(method: PaymentMethod): String = when (method) {
    PaymentMethod.CASH -> "cash"
    PaymentMethod.CHEQUE -> "cheque"
}

/** Who the payer or the person met is. */
fun personLabel(person: PersonMet): String = when (person) {
    PersonMet.DEBTOR -> "debtor"
    PersonMet.GUARANTOR -> "guarantor"
    PersonMet.THIRD_PARTY -> "third party"
}

/** The partner phone's side of one co-signing. */
sealed class PartnerStep {
    /** Scanning the lead's challenge; [scan] is the progress. */
    data class Scanning(val scan: String) : PartnerStep()

    /** Core checked the challenge: the agent reads the summary and agrees or declines. */
    data class Reviewing(val summary: ChallengeSummaryText, internal val review: ChallengeReview) : PartnerStep()

    /** Signed: showing the reply for the lead to scan. */
    data class ShowingReply(val summary: ChallengeSummaryText, val code: QrCycle) : PartnerStep()

    /** The agent declined: nothing was signed. */
    data object Declined : PartnerStep()

    /** Refused by core (V03 not on the team, V05 too far apart…) or failed. */
    data class Failed(val error: ShellError) : PartnerStep()
}

/** The partner's handshake screen. */
class PartnerHandshake(private val phone: TandemPhone, private val zone: ZoneId) {
    private val challenge = FrameCollector()

    /** Where the handshake stands. */
    var step: PartnerStep = PartnerStep.Scanning(challenge.progress())
        private set

    /** Takes one text the camera read; once the challenge is whole, core checks it. */
    fun onScanned(text: String): PartnerStep {
        if (step !is PartnerStep.Scanning) return step
        if (!challenge.offer(text)) return step
        val payload = challenge.payload ?: return PartnerStep.Scanning(challenge.progress()).also { step = it }
        step = when (val review = attempt { phone.reviewChallengePayload(payload) }) {
            is Answer.Done -> PartnerStep.Reviewing(summaryText(review.value.summary(), zone), review.value)
            is Answer.Failed -> PartnerStep.Failed(review.error)
        }
        return step
    }

    /** The agent agreed with the summary: core signs, the reply goes on screen. */
    fun agree(): PartnerStep {
        val reviewing = step as? PartnerStep.Reviewing ?: return step
        step = when (val reply = attempt { phone.answerChallenge(reviewing.review) }) {
            is Answer.Done -> PartnerStep.ShowingReply(reviewing.summary, QrCycle(reply.value))
            is Answer.Failed -> PartnerStep.Failed(reply.error)
        }
        return step
    }

    /** The agent declined: nothing is signed. */
    fun decline(): PartnerStep {
        if (step is PartnerStep.Reviewing) step = PartnerStep.Declined
        return step
    }

    /** Scans again from the start. */
    fun restart(): PartnerStep {
        challenge.reset()
        step = PartnerStep.Scanning(challenge.progress())
        return step
    }
}

/** What a completed co-signing did, for the confirmation line, with any findings. */
fun completionText(completion: Completion): Pair<String, List<RuleLine>> = when (completion) {
    is Completion.CheckedIn -> "Checked in together" to completion.recorded.violations.map(RuleLine::of)
    is Completion.CheckedOut -> "Checked out together" to completion.recorded.violations.map(RuleLine::of)
    is Completion.ReceiptIssued -> "Receipt issued with both signatures" to completion.recorded.violations.map(RuleLine::of)
    is Completion.ReceiptVoided -> "Receipt voided with both signatures" to completion.recorded.violations.map(RuleLine::of)
    is Completion.Sealed -> "Sealed as bundle ${shortId(completion.seal.bundleId)}, queued for upload" to emptyList()
}
