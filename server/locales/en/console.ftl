# Tandem console, English
app-name = Tandem field visits
app-tagline = Two-person visits · evidence kept
lang-name = English
lang-other = 简体中文
skip-to-content = Skip to content

nav-requests = Visit requests
nav-sign-out = Sign out
signed-in-as = { $name } ({ $role })
role-manager = Visit manager
role-admin = Administrator
role-legal = Legal staff
role-agent = Field agent

signin-title = Sign in
signin-heading = Sign in to the console
signin-login = Sign-in name
signin-password = Password
signin-submit = Sign in
signin-failed = Wrong sign-in name or password.
signin-throttled = Too many failed sign-ins: try again in { $minutes } minutes.
signin-busy = The system is busy: try again in a moment.
signin-ended = Your session has ended: sign in again.
signin-signed-out = You have signed out.
signin-agents = Field agents use the phone app; they cannot sign in here.

requests-title = Visit requests
requests-heading = Visit requests awaiting approval
requests-count = { $count } awaiting approval
requests-empty = No visit request awaits approval.
col-case = Case
col-debtor = Debtor
col-card = Card
col-outstanding = Outstanding
col-window = Wanted visit window
col-purpose = Purpose
col-requested = Requested
col-requested-by = Requested from
requested-by-phone = an agent's phone
requested-by-console = the console
window-to = to

error-title = Something went wrong
error-not-found = The page you are looking for does not exist, or you may not see it.
error-forbidden = Your role cannot use this page.
error-csrf = This form has expired: go back, reload the page and try again.
error-internal = Something went wrong on our side: try again later. If it persists, tell your administrator.
error-back = Back to the start page

footer-masked = Card and ID numbers are shown masked.

## Account security (A01)
nav-password = Change password
signin-locked = Too many failed sign-ins in a row: this account is locked. Try again in { $minutes } minutes.
signin-elsewhere = Your account signed in somewhere else, which ended this session. If that was not you, change your password at once and tell your administrator.
password-title = Change password
password-heading = Change your password
password-expired = Your password is more than { $days } days old. Choose a new one before you continue.
password-current = Current password
password-new = New password
password-confirm = New password again
password-rules = At least { $min } characters, not containing your sign-in name, and none of your last { $count } passwords.
password-submit = Change password
password-ends-others = Changing your password signs you out everywhere else.
password-error-current = The current password is not right.
password-error-short = The new password is too short: it needs at least { $min } characters.
password-error-login = The new password must not contain your sign-in name.
password-error-reused = The new password must not be one of your last { $count } passwords.
password-error-confirm = The two new passwords are not the same.
password-changed = Your password has been changed. You have been signed out everywhere else.
password-continue = Continue to the console
