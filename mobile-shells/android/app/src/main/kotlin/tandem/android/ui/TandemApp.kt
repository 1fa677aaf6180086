// The app's root: shows whatever screen the shared flow is on. Navigation is the flow's
// state, not a nav graph: the back button returns to the visit list.
package tandem.android.ui

import androidx.activity.compose.BackHandler
import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.material3.CircularProgressIndicator
import androidx.compose.material3.LinearProgressIndicator
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.Surface
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.runtime.collectAsState
import androidx.compose.runtime.getValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.graphics.Color
import androidx.compose.ui.unit.dp
import tandem.Outcome
import tandem.android.AppViewModel
import tandem.shell.RuleLine
import tandem.shell.Screen
import tandem.shell.ShellError

@Composable
fun TandemApp(model: AppViewModel) {
    val screen by model.screen.collectAsState()
    val working by model.working.collectAsState()
    val missing by model.missingPermissions.collectAsState()
    MaterialTheme {
        Surface(Modifier.fillMaxSize()) {
            Column(Modifier.fillMaxSize()) {
                if (working) LinearProgressIndicator(Modifier.fillMaxWidth())
                if (missing.isNotEmpty()) {
                    Text(
                        "Camera, microphone and location are needed for check-in, photos and recording.",
                        color = MaterialTheme.colorScheme.error,
                        modifier = Modifier.padding(16.dp),
                    )
                }
                val current = screen
                if (current !is Screen.Visits && current !is Screen.SignIn && current != null) {
                    BackHandler { model.showVisits() }
                }
                when (current) {
                    null -> CircularProgressIndicator(Modifier.padding(32.dp))
                    is Screen.SignIn -> SignInScreen(current, model)
                    is Screen.Visits -> VisitListScreen(current, model)
                    is Screen.Visit -> VisitScreen(current, model)
                    is Screen.Lead -> LeadScreen(current, model)
                    is Screen.Partner -> PartnerScreen(current, model)
                    is Screen.Sync -> SyncScreen(current, model)
                }
            }
        }
    }
}

/** An error line; a rule's refusal leads with its id. */
@Composable
fun ErrorLine(error: ShellError?) {
    if (error == null) return
    Text(error.display(), color = MaterialTheme.colorScheme.error, modifier = Modifier.padding(vertical = 8.dp))
}

/** Warnings and flags core returned, each with its rule id. */
@Composable
fun Findings(lines: List<RuleLine>) {
    Column(verticalArrangement = Arrangement.spacedBy(4.dp)) {
        for (line in lines) {
            val color = when (line.outcome) {
                Outcome.BLOCK -> MaterialTheme.colorScheme.error
                Outcome.WARN -> Color(0xFFB26A00)
                Outcome.FLAG -> MaterialTheme.colorScheme.onSurfaceVariant
            }
            Text(line.display(), color = color)
        }
    }
}
