// The visit list and the visit screen, built from what core returns. The shell decides no
// rule: "next step" only says which button to offer; core refuses what is not allowed.
package tandem.shell

import java.time.ZoneId
import tandem.CaseStatus
import tandem.CaseView
import tandem.EventSummary
import tandem.HealthFlag
import tandem.HoldReason
import tandem.VisitState
import tandem.VisitSummary

/** The visit's state as the agent reads it. */
fun stateLabel(state: VisitState): String = when (state) {
    VisitState.ASSIGNED -> "Assigned"
    VisitState.CHECKED_IN -> "Checked in"
    VisitState.ACTIVE -> "In progress"
    VisitState.CHECKED_OUT -> "Checked out"
    VisitState.SEALED -> "Sealed, waiting to upload"
    VisitState.UPLOADING -> "Uploading"
    VisitState.ACKNOWLEDGED -> "Received by the server"
    VisitState.PURGED -> "Received; media removed from this phone"
}

/** What the visit screen offers next, by the visit's state (DESIGN.md §4). */
enum class NextStep(val label: String) {
    CHECK_IN("Check in together"),
    CAPTURE("Record the visit"),
    SEAL("Seal together"),
    UPLOAD("Upload (sync)"),
    NONE("Nothing left to do"),
}

/** The button the visit screen leads with. */
fun nextStep(state: VisitState): NextStep = when (state) {
    VisitState.ASSIGNED -> NextStep.CHECK_IN
    VisitState.CHECKED_IN, VisitState.ACTIVE -> NextStep.CAPTURE
    VisitState.CHECKED_OUT -> NextStep.SEAL
    VisitState.SEALED, VisitState.UPLOADING -> NextStep.UPLOAD
    VisitState.ACKNOWLEDGED, VisitState.PURGED -> NextStep.NONE
}

/** One row of the visit list. */
data class VisitRow(
    val visitId: String,
    val title: String,
    val state: String,
    val subtitle: String,
    val next: NextStep,
)

/** The visit list: what needs the agent first, then the rest, newest activity first. */
data class VisitListState(val rows: List<VisitRow>) {
    /** Shown instead of an empty list. */
    val emptyText: String? get() = if (rows.isEmpty()) "No visits assigned to this phone. Sync to fetch approved visits." else null

    companion object {
        /** Builds the list from [visits]; [caseRef] names each visit's case (core's case
         *  reference) and may be missing for a purged visit. */
        fun of(visits: List<VisitSummary>, caseRef: (VisitSummary) -> String?, zone: ZoneId): VisitListState {
            val order = compareBy<VisitSummary> { nextStep(it.state) == NextStep.NONE }
                .thenByDescending { lastActivity(it) ?: Long.MIN_VALUE }
                .thenBy { it.id }
            val rows = visits.sortedWith(order).map { v ->
                VisitRow(
                    visitId = v.id,
                    title = caseRef(v) ?: "Case ${shortId(v.caseId)}",
                    state = stateLabel(v.state),
                    subtitle = lastActivity(v)?.let { "${activityWord(v)} ${Format.dateTime(it, zone)}" }
                        ?: "Not started",
                    next = nextStep(v.state),
                )
            }
            return VisitListState(rows)
        }

        private fun lastActivity(v: VisitSummary): Long? =
            v.acknowledgedAtMs ?: v.sealedAtMs ?: v.checkedOutAtMs ?: v.checkedInAtMs

        private fun activityWord(v: VisitSummary): String = when {
            v.acknowledgedAtMs != null -> "Received"
            v.sealedAtMs != null -> "Sealed"
            v.checkedOutAtMs != null -> "Checked out"
            else -> "Checked in"
        }
    }
}

/** The first characters of an id, enough to tell ids apart on a screen. */
fun shortId(id: String): String = id.take(8)

/** One line of the visit's timeline. */
data class TimelineRow(
    val seq: Long,
    val time: String,
    val what: String,
    /** Marked when the time is the phone's own clock, not the server-anchored one. */
    val unanchored: Boolean,
    val finding: RuleLine?,
)

/** The visit screen. */
data class VisitDetailState(
    val visitId: String,
    val state: String,
    val next: NextStep,
    val caseRef: String,
    val debtorName: String,
    val card: String,
    val idNumber: String,
    val outstanding: String,
    val caseStatus: String,
    val addresses: List<String>,
    val healthNote: String?,
    val timeline: List<TimelineRow>,
    /** Every warning and flag recorded on the visit, with its rule id. */
    val findings: List<RuleLine>,
    val duration: String?,
) {
    companion object {
        /** Builds the screen from core's answers for one visit. */
        fun of(visit: VisitSummary, case: CaseView, events: List<EventSummary>, zone: ZoneId, nowMs: Long): VisitDetailState {
            val timeline = events.sortedBy { it.seq }.map { e ->
                TimelineRow(
                    seq = e.seq.toLong(),
                    time = Format.clock(e.atMs, zone),
                    what = eventLabel(e.kind),
                    unanchored = !e.anchored,
                    finding = e.flag?.let(RuleLine::of),
                )
            }
            val started = visit.checkedInAtMs
            val duration = started?.let { Format.duration((visit.checkedOutAtMs ?: nowMs) - it) }
            return VisitDetailState(
                visitId = visit.id,
                state = stateLabel(visit.state),
                next = nextStep(visit.state),
                caseRef = case.caseRef,
                debtorName = case.debtorName,
                // Core hands these over masked already; masking again is free insurance (A01).
                card = Format.maskNumber(case.cardMasked),
                idNumber = Format.maskNumber(case.debtorIdMasked),
                outstanding = Format.yuan(case.outstandingFen),
                caseStatus = caseStatusLabel(case.status),
                addresses = case.addresses.map { it.text },
                healthNote = case.healthFlag?.let(::healthLabel),
                timeline = timeline,
                findings = timeline.mapNotNull { it.finding },
                duration = duration,
            )
        }
    }
}

/** The case's standing with the bank. */
fun caseStatusLabel(status: CaseStatus): String = when (status) {
    is CaseStatus.Active -> "Active"
    is CaseStatus.Settled -> "Settled"
    is CaseStatus.OnHold -> "On hold: " + when (status.reason) {
        HoldReason.DISPUTE -> "dispute"
        HoldReason.COMPLAINT -> "complaint"
        HoldReason.VULNERABILITY_REVIEW -> "vulnerability review"
    }
}

/** An earlier visit's health note (V11). */
fun healthLabel(flag: HealthFlag): String = when (flag) {
    HealthFlag.SERIOUS_ILLNESS -> "V11: serious illness recorded in the household"
    HealthFlag.PREGNANCY -> "V11: pregnancy recorded in the household"
}

/** An event kind of the bundle (`checked_in`, `audio_segment`…) as a timeline label. */
fun eventLabel(kind: String): String = when (kind) {
    "checked_in" -> "Checked in together"
    "checked_out" -> "Checked out together"
    "photo" -> "Photo"
    "audio_segment" -> "Audio segment"
    "audio_gap" -> "Audio gap"
    "note" -> "Note"
    "consent" -> "Consent recorded"
    "identity_confirmed" -> "Identity confirmed"
    "dispute" -> "Dispute recorded"
    "health_flagged" -> "Health flag (V11)"
    "template_used" -> "Bank template used"
    "promise" -> "Promise to pay"
    "complaint" -> "Complaint"
    "receipt_issued" -> "Receipt issued"
    "receipt_voided" -> "Receipt voided"
    "clock_discrepancy" -> "Phone clock differs from the server's"
    "rule_flag" -> "Rule finding"
    else -> kind.replace('_', ' ').replaceFirstChar { it.uppercase() }
}
