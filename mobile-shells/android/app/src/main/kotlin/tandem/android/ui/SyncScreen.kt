// The sync screen: the outbox as core reports it, E03 deadlines with their rule id, a
// cancellable sync now, and the hand-over to WorkManager.
package tandem.android.ui

import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.material3.Button
import androidx.compose.material3.LinearProgressIndicator
import androidx.compose.material3.OutlinedButton
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.runtime.collectAsState
import androidx.compose.runtime.getValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.unit.dp
import tandem.android.AppViewModel
import tandem.shell.Format
import tandem.shell.Screen

@Composable
fun SyncScreen(screen: Screen.Sync, model: AppViewModel) {
    val progress by model.syncProgress.collectAsState()
    val working by model.working.collectAsState()
    Column(Modifier.padding(24.dp), verticalArrangement = Arrangement.spacedBy(12.dp)) {
        Text(screen.state.headline)
        screen.last?.let { Text(it) }
        for (line in screen.state.lines) Text(line)
        Findings(screen.state.deadlines)
        ErrorLine(screen.error)
        progress?.let { (done, total) ->
            if (total > 0) LinearProgressIndicator(progress = { done.toFloat() / total }, modifier = Modifier.fillMaxWidth())
            Text("${Format.bytes(done)} of ${Format.bytes(total)}")
        }
        Row(horizontalArrangement = Arrangement.spacedBy(12.dp)) {
            if (working) {
                OutlinedButton(onClick = model::cancelSync) { Text("Cancel") }
            } else {
                Button(onClick = model::syncNow) { Text("Sync now") }
                OutlinedButton(onClick = model::syncInBackground) { Text("Upload in background") }
            }
            OutlinedButton(onClick = model::showVisits) { Text("Visits") }
        }
    }
}
