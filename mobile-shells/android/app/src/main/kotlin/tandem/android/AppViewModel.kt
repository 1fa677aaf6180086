// Runs the shared flow's blocking calls on a background thread and publishes the screen to
// Compose. Nothing here decides anything: each method is one call of `AppFlow`.
package tandem.android

import android.app.Application
import androidx.lifecycle.AndroidViewModel
import androidx.lifecycle.viewModelScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.launch
import kotlinx.coroutines.sync.Mutex
import kotlinx.coroutines.sync.withLock
import tandem.CancelToken
import tandem.VisitAction
import tandem.android.sync.SyncWorker
import tandem.shell.Answer
import tandem.shell.AppFlow
import tandem.shell.AudioSession
import tandem.shell.LeadHandshake
import tandem.shell.LeadStep
import tandem.shell.ReceiptForm
import tandem.shell.Screen

/** The screen on display, and the actions of the screens. */
class AppViewModel(application: Application) : AndroidViewModel(application) {
    private val app = application as TandemApplication
    private val flow: AppFlow get() = app.flow
    // One call into core at a time from the UI: a second tap waits for the first.
    private val busy = Mutex()

    private val _screen = MutableStateFlow<Screen?>(null)
    /** Null while the phone opens. */
    val screen: StateFlow<Screen?> = _screen

    private val _working = MutableStateFlow(false)
    /** A call is running (the screens show progress and disable their buttons). */
    val working: StateFlow<Boolean> = _working

    private val _syncProgress = MutableStateFlow<Pair<Long, Long>?>(null)
    /** Bytes uploaded of the current sync, done to total. */
    val syncProgress: StateFlow<Pair<Long, Long>?> = _syncProgress

    /** The recording of the open visit, if any. */
    var audio: AudioSession? = null
        private set

    private var syncCancel: CancelToken? = null

    init {
        perform { flow.launch() }
    }

    private fun perform(call: () -> Screen) {
        viewModelScope.launch(Dispatchers.IO) {
            busy.withLock {
                _working.value = true
                try {
                    _screen.value = call()
                } finally {
                    _working.value = false
                }
            }
        }
    }

    private val _missing = MutableStateFlow<Set<String>>(emptySet())
    /** Permissions the agent refused: the screens say what cannot work without them. */
    val missingPermissions: StateFlow<Set<String>> = _missing

    /** The permission dialog closed. */
    fun permissionsChanged(granted: Map<String, Boolean>) {
        _missing.value = granted.filterValues { !it }.keys
    }

    fun signIn(code: String) = perform { flow.signIn(code) }

    fun showVisits() = perform { flow.showVisits() }

    fun openVisit(visitId: String) = perform { flow.openVisit(visitId) }

    /** A sync now, in the app (the user waits and can cancel). */
    fun syncNow() {
        val cancel = CancelToken().also { syncCancel = it }
        perform { flow.sync({ done, total -> _syncProgress.value = done to total }, cancel).also { _syncProgress.value = null } }
    }

    /** Cancels the running sync before its next request. */
    fun cancelSync() {
        syncCancel?.cancel()
    }

    /** Leaves the upload to WorkManager (the agent closes the app). */
    fun syncInBackground() = SyncWorker.enqueueNow(app)

    fun addNote(visitId: String, text: String) = perform { flow.addNote(visitId, text) }

    fun record(visitId: String, action: VisitAction) = perform { flow.record(visitId, action) }

    fun addPhoto(visitId: String, jpeg: ByteArray, interior: Boolean) = perform { flow.addPhoto(visitId, jpeg, interior) }

    fun checkIn(visitId: String, outsideFenceReason: String?) = lead(visitId) { it.checkIn(visitId, outsideFenceReason) }

    fun checkOut(visitId: String) = lead(visitId) { it.checkOut(visitId) }

    fun seal(visitId: String) = lead(visitId) { it.seal(visitId) }

    fun receipt(visitId: String, form: ReceiptForm) = lead(visitId) { it.receipt(visitId, form) }

    private fun lead(visitId: String, start: (LeadHandshake) -> LeadStep) = perform { flow.beginLead(visitId, start) }

    /** A text the camera read on the lead's handshake screen. */
    fun leadScanned(text: String) = perform { flow.leadScanned(text) }

    fun beginPartner() = perform { flow.beginPartner() }

    fun partnerScanned(text: String) = perform { flow.partnerScanned(text) }

    fun partnerAgree() = perform { flow.partnerAgree() }

    fun partnerDecline() = perform { flow.partnerDecline() }

    /** Starts recording the visit (V07): core opens the first segment, then the
     *  foreground service feeds it from the microphone. */
    fun startRecording(visitId: String) {
        val session = AudioSession(app.phone, visitId, tandem.android.capture.Recorder.SAMPLE_RATE)
        audio = session
        perform {
            if (session.start() is Answer.Done) tandem.android.capture.RecordingService.start(app, session)
            flow.openVisit(visitId)
        }
    }

    /** Stops recording; core closes and chains the open segment. */
    fun stopRecording() {
        tandem.android.capture.RecordingService.stop(app)
        audio?.let { session -> perform { session.stop(); flow.openVisit(session.visitId) } }
    }
}
