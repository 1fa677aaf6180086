// Enrolment: the admin gives the agent a one-time code; the phone sends its public key with
// it and then syncs once (policy, time anchor, assigned visits).
package tandem.android.ui

import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.text.KeyboardOptions
import androidx.compose.material3.Button
import androidx.compose.material3.OutlinedTextField
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.saveable.rememberSaveable
import androidx.compose.runtime.setValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.text.input.KeyboardCapitalization
import androidx.compose.ui.unit.dp
import tandem.android.AppViewModel
import tandem.shell.Screen

@Composable
fun SignInScreen(screen: Screen.SignIn, model: AppViewModel) {
    var code by rememberSaveable { mutableStateOf("") }
    Column(Modifier.padding(24.dp), verticalArrangement = Arrangement.spacedBy(16.dp)) {
        Text("Enrol this phone")
        Text("Enter the one-time code your administrator gave you. The code works once, for this phone.")
        OutlinedTextField(
            value = code,
            onValueChange = { code = it },
            label = { Text("Enrolment code") },
            singleLine = true,
            keyboardOptions = KeyboardOptions(capitalization = KeyboardCapitalization.Characters),
        )
        Button(onClick = { model.signIn(code) }, enabled = code.isNotBlank()) { Text("Enrol") }
        ErrorLine(screen.error)
    }
}
