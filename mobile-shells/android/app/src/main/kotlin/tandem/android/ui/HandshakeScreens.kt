// The two sides of a co-signing. The lead's screen shows its challenge as QR frames cycling
// every 400 ms and scans the partner's reply; the partner's screen scans, shows core's
// summary for its agent to read, and shows the signed reply.
package tandem.android.ui

import androidx.compose.foundation.Image
import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.aspectRatio
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.height
import androidx.compose.foundation.layout.padding
import androidx.compose.material3.Button
import androidx.compose.material3.OutlinedButton
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.runtime.LaunchedEffect
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableLongStateOf
import androidx.compose.runtime.remember
import androidx.compose.runtime.setValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.graphics.asImageBitmap
import androidx.compose.ui.unit.dp
import kotlinx.coroutines.delay
import tandem.android.AppViewModel
import tandem.android.capture.QrScanner
import tandem.android.capture.qrBitmap
import tandem.shell.LeadStep
import tandem.shell.PartnerStep
import tandem.shell.QrCycle
import tandem.shell.Screen
import tandem.shell.purposeLabel

/** A multi-frame code on screen, each frame in turn (the screen stays bright and awake). */
@Composable
fun CyclingQr(code: QrCycle) {
    var elapsed by remember(code) { mutableLongStateOf(0L) }
    LaunchedEffect(code) {
        val start = System.nanoTime()
        while (true) {
            elapsed = (System.nanoTime() - start) / 1_000_000
            delay(code.periodMs / 2)
        }
    }
    val index = code.indexAt(elapsed)
    val bitmap = remember(code, index) { qrBitmap(code.frames[index], 900).asImageBitmap() }
    Column {
        Image(bitmap, contentDescription = "Code ${index + 1} of ${code.frames.size}", modifier = Modifier.fillMaxWidth().aspectRatio(1f))
        Text("Code ${index + 1} of ${code.frames.size}")
    }
}

@Composable
fun LeadScreen(screen: Screen.Lead, model: AppViewModel) {
    Column(Modifier.padding(16.dp), verticalArrangement = Arrangement.spacedBy(12.dp)) {
        when (val step = screen.step) {
            is LeadStep.ShowingChallenge -> {
                Text("${purposeLabel(step.purpose)}: let your partner scan this, then scan their answer.")
                CyclingQr(step.code)
                QrScanner(onText = model::leadScanned, modifier = Modifier.fillMaxWidth().height(200.dp))
                Text(step.scan)
            }
            is LeadStep.Failed -> ErrorLine(step.error)
            is LeadStep.Done, LeadStep.Idle -> Unit
        }
        OutlinedButton(onClick = { model.openVisit(screen.visitId) }) { Text("Back to the visit") }
    }
}

@Composable
fun PartnerScreen(screen: Screen.Partner, model: AppViewModel) {
    Column(Modifier.padding(16.dp), verticalArrangement = Arrangement.spacedBy(12.dp)) {
        when (val step = screen.step) {
            is PartnerStep.Scanning -> {
                Text("Scan the lead's code.")
                QrScanner(onText = model::partnerScanned, modifier = Modifier.fillMaxWidth().aspectRatio(1f))
                Text(step.scan)
            }
            is PartnerStep.Reviewing -> {
                // Read before signing: core checked all of it on this phone.
                Text(step.summary.title)
                step.summary.lines.forEach { Text(it) }
                Row(horizontalArrangement = Arrangement.spacedBy(12.dp)) {
                    Button(onClick = model::partnerAgree) { Text("I agree: sign") }
                    OutlinedButton(onClick = model::partnerDecline) { Text("Decline") }
                }
            }
            is PartnerStep.ShowingReply -> {
                Text("${step.summary.title}: signed. Let the lead scan this.")
                CyclingQr(step.code)
            }
            PartnerStep.Declined -> Text("Declined: nothing was signed.")
            is PartnerStep.Failed -> ErrorLine(step.error)
        }
        OutlinedButton(onClick = model::showVisits) { Text("Done") }
    }
}
