// The visit list and the visit screen. Buttons follow the visit's state as core reports it;
// whether an action is allowed is core's answer when the button is pressed.
package tandem.android.ui

import androidx.compose.foundation.clickable
import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.height
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.lazy.LazyColumn
import androidx.compose.foundation.lazy.items
import androidx.compose.foundation.rememberScrollState
import androidx.compose.foundation.verticalScroll
import androidx.compose.material3.Button
import androidx.compose.material3.HorizontalDivider
import androidx.compose.material3.OutlinedButton
import androidx.compose.material3.OutlinedTextField
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.remember
import androidx.compose.runtime.saveable.rememberSaveable
import androidx.compose.runtime.setValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.platform.LocalContext
import androidx.compose.ui.unit.dp
import tandem.android.AppViewModel
import tandem.android.capture.PhotoCamera
import tandem.android.capture.PhotoPreview
import tandem.shell.NextStep
import tandem.shell.Screen

@Composable
fun VisitListScreen(screen: Screen.Visits, model: AppViewModel) {
    Column(Modifier.padding(16.dp)) {
        Row(Modifier.fillMaxWidth().clickable { model.syncNow() }.padding(vertical = 8.dp)) {
            Text(screen.sync.headline.ifEmpty { "Sync" })
        }
        Findings(screen.sync.deadlines)
        ErrorLine(screen.error)
        Row(horizontalArrangement = Arrangement.spacedBy(12.dp)) {
            Button(onClick = model::syncNow) { Text("Sync") }
            OutlinedButton(onClick = model::beginPartner) { Text("Co-sign for the lead") }
        }
        HorizontalDivider(Modifier.padding(vertical = 8.dp))
        screen.list.emptyText?.let { Text(it) }
        LazyColumn {
            items(screen.list.rows, key = { it.visitId }) { row ->
                Column(Modifier.fillMaxWidth().clickable { model.openVisit(row.visitId) }.padding(vertical = 12.dp)) {
                    Text(row.title)
                    Text("${row.state} · ${row.subtitle}")
                    if (row.next != NextStep.NONE) Text(row.next.label)
                }
                HorizontalDivider()
            }
        }
    }
}

/** What the visit screen has open below its header. */
private enum class Panel { NONE, NOTE, PHOTO, RECEIPT, OUTSIDE_FENCE }

@Composable
fun VisitScreen(screen: Screen.Visit, model: AppViewModel) {
    val d = screen.detail
    var panel by remember { mutableStateOf(Panel.NONE) }
    Column(Modifier.padding(16.dp).verticalScroll(rememberScrollState()), verticalArrangement = Arrangement.spacedBy(8.dp)) {
        Text("${d.caseRef} · ${d.state}")
        Text("${d.debtorName} · card ${d.card} · ID ${d.idNumber}")
        Text("Outstanding ${d.outstanding} · ${d.caseStatus}")
        d.addresses.forEach { Text(it) }
        d.healthNote?.let { Text(it) }
        d.duration?.let { Text("On the visit for $it") }
        screen.notice?.let { Text(it) }
        Findings(screen.findings)
        ErrorLine(screen.error)

        when (d.next) {
            NextStep.CHECK_IN -> Row(horizontalArrangement = Arrangement.spacedBy(8.dp)) {
                Button(onClick = { model.checkIn(d.visitId, null) }) { Text(d.next.label) }
                // V05: outside the fence the check-in is flagged and needs the team's reason.
                OutlinedButton(onClick = { panel = Panel.OUTSIDE_FENCE }) { Text("Outside the address…") }
            }
            NextStep.CAPTURE -> CaptureButtons(d.visitId, model) { panel = it }
            NextStep.SEAL -> Button(onClick = { model.seal(d.visitId) }) { Text(d.next.label) }
            NextStep.UPLOAD -> Button(onClick = model::syncNow) { Text(d.next.label) }
            NextStep.NONE -> Text(d.next.label)
        }
        OutlinedButton(onClick = model::showVisits) { Text("All visits") }

        when (panel) {
            Panel.NOTE -> NotePanel { text -> model.addNote(d.visitId, text); panel = Panel.NONE }
            Panel.PHOTO -> PhotoPanel(model, d.visitId) { panel = Panel.NONE }
            Panel.RECEIPT -> ReceiptPanel { form -> model.receipt(d.visitId, form); panel = Panel.NONE }
            Panel.OUTSIDE_FENCE -> NotePanel(label = "Why the team is not at the approved address") { reason ->
                model.checkIn(d.visitId, reason)
                panel = Panel.NONE
            }
            Panel.NONE -> Unit
        }

        HorizontalDivider()
        Text("Timeline")
        for (row in d.timeline) {
            Text("${row.time}${if (row.unanchored) " (phone clock)" else ""}  ${row.what}")
            row.finding?.let { Text("   ${it.display()}") }
        }
    }
}

@Composable
private fun CaptureButtons(visitId: String, model: AppViewModel, open: (Panel) -> Unit) {
    val recording = model.audio?.let { it.visitId == visitId && it.recording } == true
    Column(verticalArrangement = Arrangement.spacedBy(8.dp)) {
        Row(horizontalArrangement = Arrangement.spacedBy(8.dp)) {
            if (recording) {
                OutlinedButton(onClick = model::stopRecording) { Text("Stop recording") }
            } else {
                Button(onClick = { model.startRecording(visitId) }) { Text("Record audio") }
            }
            OutlinedButton(onClick = { open(Panel.PHOTO) }) { Text("Photo") }
            OutlinedButton(onClick = { open(Panel.NOTE) }) { Text("Note") }
        }
        model.audio?.takeIf { it.visitId == visitId }?.let { Text(it.status()) }
        model.audio?.error?.let { ErrorLine(it) }
        Row(horizontalArrangement = Arrangement.spacedBy(8.dp)) {
            OutlinedButton(onClick = { open(Panel.RECEIPT) }) { Text("Receipt") }
            Button(onClick = { model.checkOut(visitId) }) { Text("Check out together") }
        }
    }
}

@Composable
private fun NotePanel(label: String = "Note", onDone: (String) -> Unit) {
    var text by rememberSaveable { mutableStateOf("") }
    Column(verticalArrangement = Arrangement.spacedBy(8.dp)) {
        OutlinedTextField(value = text, onValueChange = { text = it }, label = { Text(label) }, minLines = 3, modifier = Modifier.fillMaxWidth())
        Button(onClick = { onDone(text) }, enabled = text.isNotBlank()) { Text("Save") }
    }
}

@Composable
private fun PhotoPanel(model: AppViewModel, visitId: String, onDone: () -> Unit) {
    val context = LocalContext.current
    val camera = remember { PhotoCamera(context) }
    var interior by remember { mutableStateOf(false) }
    var problem by remember { mutableStateOf<String?>(null) }
    Column(verticalArrangement = Arrangement.spacedBy(8.dp)) {
        PhotoPreview(camera, Modifier.fillMaxWidth().height(320.dp))
        Row(horizontalArrangement = Arrangement.spacedBy(8.dp)) {
            Button(onClick = {
                camera.take(onJpeg = { jpeg -> model.addPhoto(visitId, jpeg, interior); onDone() }, onError = { problem = it })
            }) { Text("Take photo") }
            // V08: interior photos need the occupant's recorded consent; core flags them otherwise.
            OutlinedButton(onClick = { interior = !interior }) { Text(if (interior) "Inside the home ✓" else "Inside the home") }
        }
        problem?.let { Text(it) }
    }
}
