// The app's screens and the flow between them: sign in (enrol) → sync → visit list →
// visit → handshakes, capture, receipt → seal → upload. Every step is one call into core
// through the bindings; every call blocks, so the platform runs these methods off its UI
// thread and shows [AppFlow.screen] afterwards.
package tandem.shell

import java.time.ZoneId
import tandem.CancelToken
import tandem.Identity
import tandem.Server
import tandem.SyncProgress
import tandem.TandemException
import tandem.TandemPhone
import tandem.VisitAction

/** What the app shows. */
sealed class Screen {
    /** Enrolment with the admin's one-time code. */
    data class SignIn(val error: ShellError? = null) : Screen()

    /** The visits held on this phone, with the sync line above them. */
    data class Visits(val list: VisitListState, val sync: SyncScreenState, val error: ShellError? = null) : Screen()

    /** One visit. [notice] confirms the last action, with its findings. */
    data class Visit(
        val detail: VisitDetailState,
        val notice: String? = null,
        val findings: List<RuleLine> = emptyList(),
        val error: ShellError? = null,
    ) : Screen()

    /** The lead's side of a co-signing for [visitId]. */
    data class Lead(val visitId: String, val step: LeadStep) : Screen()

    /** The partner's side of a co-signing. */
    data class Partner(val step: PartnerStep) : Screen()

    /** The sync screen. */
    data class Sync(val state: SyncScreenState, val last: String? = null, val error: ShellError? = null) : Screen()
}

/** The app's state and its transitions; one per running app. */
class AppFlow(
    private val phone: TandemPhone,
    private val server: Server,
    private val zone: ZoneId,
    /** UTC ms now, for the durations on screen only (core keeps its own anchored clock). */
    private val wallMs: () -> Long = System::currentTimeMillis,
) {
    /** The agent enrolled on this phone, once known. */
    var identity: Identity? = null
        private set

    /** What is on screen. */
    var screen: Screen = Screen.SignIn()
        private set

    /** The lead handshake in progress, if any. */
    val lead = LeadHandshake(phone)

    /** The partner handshake in progress, if any. */
    var partner: PartnerHandshake? = null
        private set

    /** Opens on the visit list when enrolled, else on sign-in. */
    fun launch(): Screen {
        screen = try {
            identity = phone.identity()
            visitsScreen()
        } catch (e: TandemException.NotEnrolled) {
            Screen.SignIn()
        } catch (e: TandemException) {
            Screen.SignIn(ShellError.of(e))
        }
        return screen
    }

    /** Enrols with [code], then syncs once to fetch the policy, time anchor and visits. */
    fun signIn(code: String): Screen {
        screen = when (val enrolled = attempt { phone.enroll(server, code.trim()) }) {
            is Answer.Failed -> Screen.SignIn(enrolled.error)
            is Answer.Done -> {
                identity = enrolled.value
                sync(null, null)
                visitsScreen((screen as? Screen.Sync)?.error)
            }
        }
        return screen
    }

    /** One sync round (long: network); the sync screen shows its outcome. */
    fun sync(progress: ((Long, Long) -> Unit)?, cancel: CancelToken?): Screen {
        val listener = progress?.let { report ->
            object : SyncProgress {
                override fun onProgress(done: ULong, total: ULong) = report(done.toLong(), total.toLong())
            }
        }
        val round = attempt { phone.syncNow(server, listener, cancel) }
        screen = when (val status = attempt { phone.syncStatus() }) {
            is Answer.Done -> Screen.Sync(
                SyncScreenState.of(status.value, zone),
                round.valueOrNull()?.let(::roundSummary),
                round.errorOrNull(),
            )
            is Answer.Failed -> Screen.Sync(SyncScreenState(status.error.display(), emptyList(), emptyList(), true), null, status.error)
        }
        return screen
    }

    /** The visit list. */
    fun showVisits(): Screen {
        screen = visitsScreen()
        return screen
    }

    private fun visitsScreen(error: ShellError? = null): Screen {
        val visits = attempt { phone.visits() }
        val status = attempt { phone.syncStatus() }
        return when {
            visits is Answer.Done && status is Answer.Done -> {
                val list = VisitListState.of(visits.value, { v -> attempt { phone.caseOf(v.id).caseRef }.valueOrNull() }, zone)
                Screen.Visits(list, SyncScreenState.of(status.value, zone), error)
            }
            else -> Screen.Visits(
                VisitListState(emptyList()),
                SyncScreenState("", emptyList(), emptyList(), false),
                visits.errorOrNull() ?: status.errorOrNull(),
            )
        }
    }

    /** One visit's screen. */
    fun openVisit(visitId: String, notice: String? = null, findings: List<RuleLine> = emptyList(), error: ShellError? = null): Screen {
        val detail = attempt {
            VisitDetailState.of(phone.visit(visitId), phone.caseOf(visitId), phone.events(visitId), zone, wallMs())
        }
        screen = when (detail) {
            is Answer.Done -> Screen.Visit(detail.value, notice, findings, error)
            // A purged visit keeps its summary but not its case (D01): back to the list, saying why.
            is Answer.Failed -> visitsScreen(detail.error)
        }
        return screen
    }

    /** Records an action (note, consent, identity…) and shows the visit with its findings. */
    fun record(visitId: String, action: VisitAction): Screen = when (val r = attempt { phone.record(visitId, action) }) {
        is Answer.Done -> openVisit(visitId, "${eventLabel(r.value.kind)} recorded", r.value.violations.map(RuleLine::of))
        is Answer.Failed -> openVisit(visitId, error = r.error)
    }

    /** A typed note. */
    fun addNote(visitId: String, text: String): Screen = record(visitId, VisitAction.Note(text))

    /** A photo as the camera gave it (long: core decodes and hashes it). */
    fun addPhoto(visitId: String, jpeg: ByteArray, interior: Boolean): Screen =
        when (val p = attempt { phone.capturePhoto(visitId, jpeg, interior) }) {
            is Answer.Done -> openVisit(visitId, "Photo kept (${p.value.original.take(12)}…)", p.value.recorded.violations.map(RuleLine::of))
            is Answer.Failed -> openVisit(visitId, error = p.error)
        }

    /** Shows the lead's side of a co-signing started with [start] (check-in, receipt…). */
    fun beginLead(visitId: String, start: (LeadHandshake) -> LeadStep): Screen {
        screen = Screen.Lead(visitId, start(lead))
        return screen
    }

    /** A text the lead's camera read; back on the visit once the co-signing is recorded. */
    fun leadScanned(text: String): Screen {
        val visitId = (screen as? Screen.Lead)?.visitId ?: return screen
        screen = when (val step = lead.onScanned(text)) {
            is LeadStep.Done -> completionText(step.completion).let { (notice, findings) -> openVisit(visitId, notice, findings) }
            else -> Screen.Lead(visitId, step)
        }
        return screen
    }

    /** Opens the partner's scanner. */
    fun beginPartner(): Screen {
        val handshake = PartnerHandshake(phone, zone).also { partner = it }
        screen = Screen.Partner(handshake.step)
        return screen
    }

    /** A text the partner's camera read. */
    fun partnerScanned(text: String): Screen = partnerStep { it.onScanned(text) }

    /** The partner's agent agreed with the summary. */
    fun partnerAgree(): Screen = partnerStep { it.agree() }

    /** The partner's agent declined. */
    fun partnerDecline(): Screen = partnerStep { it.decline() }

    private fun partnerStep(move: (PartnerHandshake) -> PartnerStep): Screen {
        val handshake = partner ?: return screen
        screen = Screen.Partner(move(handshake))
        return screen
    }
}
