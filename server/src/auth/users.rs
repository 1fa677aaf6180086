//! What an admin does to accounts (D03: only within their banks; another bank's account is
//! "not found"): creates console users with a one-time initial password that must be
//! changed at the first sign-in (A01), disables and enables them, changes their role and
//! banks, and creates agents. Every change is written to the audit log in the same
//! transaction, once for each of the admin's banks it concerns.
//!
//! Threats (THREATS.md): a user of another bank, or a role without need (scoping, 404 for
//! other banks' accounts, admin only); a malicious insider with an admin account of one
//! bank reaching another bank through a shared account (a role or the disabled state is
//! global to an account, so an admin changes them only for accounts wholly within their
//! banks); a thief of an initial password (it works once: it must be changed at once).

use std::net::IpAddr;

use serde_json::json;
use tandem_core::model::{AgentId, BankId};
use uuid::Uuid;

use super::{UserAuth, shared_banks};
use crate::AppState;
use crate::audit::{AuditAction, AuditEntry};
use crate::db::admin::{Created, UserRecord};
use crate::db::{NewUser, Role};
use crate::error::AppError;
use crate::secrets;
use crate::throttle::VerifyError;

/// What is wrong with an account form, one variant per field rule; the console words each
/// in the page's language, the problem's `type` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountProblem {
    /// The sign-in name is not 3 to 64 letters, digits, `.`, `_`, `-` or `@`.
    LoginInvalid,
    /// Another account has the sign-in name.
    LoginTaken,
    /// The name is empty, longer than 64 characters, or holds control characters.
    NameInvalid,
    /// Not one of manager, legal, admin.
    RoleInvalid,
    /// None of the admin's banks chosen, or a bank that is not theirs.
    BanksInvalid,
    /// The employee number is not 1 to 32 letters, digits, `-` or `_`.
    EmployeeNoInvalid,
    /// Another agent has the employee number.
    EmployeeNoTaken,
    /// An admin may not disable themselves, nor take their own admin role away.
    OwnAccount,
    /// The account also serves banks the admin does not administer: its role and state
    /// are not theirs to change.
    OtherBanks,
}

impl AccountProblem {
    /// The problem `type` suffix, and the console's message id after `admin-problem-`.
    pub fn kind(self) -> &'static str {
        match self {
            Self::LoginInvalid => "user-login-invalid",
            Self::LoginTaken => "user-login-taken",
            Self::NameInvalid => "user-name-invalid",
            Self::RoleInvalid => "user-role-invalid",
            Self::BanksInvalid => "user-banks-invalid",
            Self::EmployeeNoInvalid => "agent-employee-no-invalid",
            Self::EmployeeNoTaken => "agent-employee-no-taken",
            Self::OwnAccount => "user-own-account",
            Self::OtherBanks => "user-other-banks",
        }
    }

    /// The form field it is about.
    pub fn field(self) -> &'static str {
        match self {
            Self::LoginInvalid | Self::LoginTaken => "login",
            Self::NameInvalid => "name",
            Self::RoleInvalid | Self::OwnAccount | Self::OtherBanks => "role",
            Self::BanksInvalid => "banks",
            Self::EmployeeNoInvalid | Self::EmployeeNoTaken => "employee_no",
        }
    }
}

impl From<AccountProblem> for AppError {
    fn from(p: AccountProblem) -> Self {
        let detail = match p {
            AccountProblem::LoginInvalid => {
                "A sign-in name is 3 to 64 letters, digits, '.', '_', '-' or '@'."
            }
            AccountProblem::LoginTaken => "Another account has this sign-in name.",
            AccountProblem::NameInvalid => "A name is 1 to 64 characters.",
            AccountProblem::RoleInvalid => "The role is manager, legal or admin.",
            AccountProblem::BanksInvalid => "Choose one or more of your banks.",
            AccountProblem::EmployeeNoInvalid => {
                "An employee number is 1 to 32 letters, digits, '-' or '_'."
            }
            AccountProblem::EmployeeNoTaken => "Another agent has this employee number.",
            AccountProblem::OwnAccount => {
                "You cannot disable your own account or take your own admin role away."
            }
            AccountProblem::OtherBanks => {
                "The account also serves banks you do not administer: ask their admin."
            }
        };
        match p {
            AccountProblem::LoginTaken | AccountProblem::EmployeeNoTaken => {
                AppError::conflict(p.kind(), detail)
            }
            _ => AppError::invalid(p.kind(), detail),
        }
    }
}

/// A console user to create.
#[derive(Debug, Clone)]
pub struct NewConsoleUser {
    /// Sign-in name.
    pub login: String,
    /// Display name.
    pub display_name: String,
    /// Role (manager, legal or admin).
    pub role: Role,
    /// Banks, every one the admin's.
    pub banks: Vec<BankId>,
}

/// A user just created, with the initial password shown once.
#[derive(Debug, Clone)]
pub struct CreatedUser {
    /// The user.
    pub id: Uuid,
    /// The one-time initial password: it must be changed at the first sign-in.
    pub initial_password: String,
}

fn login_ok(login: &str) -> bool {
    (3..=64).contains(&login.len())
        && login
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'))
}

fn name_ok(name: &str) -> bool {
    let n = name.chars().count();
    (1..=64).contains(&n) && !name.chars().any(char::is_control)
}

fn employee_no_ok(no: &str) -> bool {
    (1..=32).contains(&no.len())
        && no
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

/// Every problem of a new console user's fields (empty: acceptable), before the database.
pub fn new_user_problems(admin: &UserAuth, user: &NewConsoleUser) -> Vec<AccountProblem> {
    let mut out = Vec::new();
    if !login_ok(&user.login) {
        out.push(AccountProblem::LoginInvalid);
    }
    if !name_ok(user.display_name.trim()) {
        out.push(AccountProblem::NameInvalid);
    }
    if user.role == Role::Agent {
        out.push(AccountProblem::RoleInvalid);
    }
    if !banks_ok(admin, &user.banks) {
        out.push(AccountProblem::BanksInvalid);
    }
    out
}

fn banks_ok(admin: &UserAuth, banks: &[BankId]) -> bool {
    !banks.is_empty() && banks.iter().all(|b| admin.sees(*b))
}

/// Creates a console user of the admin's banks with a random initial password, stored
/// with `password_changed_ms` 0 so that the first sign-in must change it (A01).
pub(crate) async fn create_user(
    state: &AppState,
    admin: &UserAuth,
    user: &NewConsoleUser,
    client: Option<IpAddr>,
) -> Result<CreatedUser, AppError> {
    admin.require(&[Role::Admin])?;
    if let Some(p) = new_user_problems(admin, user).first() {
        return Err((*p).into());
    }
    let initial_password =
        secrets::new_password().map_err(|e| AppError::Internal(e.to_string()))?;
    let hash = state
        .login_throttle
        .hash(initial_password.clone())
        .await
        .map_err(|e| match e {
            VerifyError::Refused(_) => AppError::Internal("password hashing busy".into()),
            VerifyError::Failed(e) => AppError::Internal(e),
        })?;
    let id = Uuid::now_v7();
    let now = state.now_ms();
    let entry = AuditEntry::about_user(now, AuditAction::UserCreated, Some(id))
        .by(admin.user.user_id)
        .from_addr(client)
        .detail(json!({
            "role": user.role.as_str(),
            "banks": user.banks.iter().map(ToString::to_string).collect::<Vec<_>>(),
        }));
    let new = NewUser {
        id,
        login: user.login.clone(),
        display_name: user.display_name.trim().to_owned(),
        role: user.role,
        password_hash: Some(hash),
        bank_ids: user.banks.clone(),
    };
    match state
        .db
        .create_user(&new, now, &entry.per_bank(&user.banks))
        .await?
    {
        Created::Created => Ok(CreatedUser {
            id,
            initial_password,
        }),
        Created::LoginTaken | Created::EmployeeNoTaken => Err(AccountProblem::LoginTaken.into()),
    }
}

/// A console user (not an agent) of the admin's banks; anything else is "not found".
pub(crate) async fn visible_user(
    state: &AppState,
    admin: &UserAuth,
    id: &str,
) -> Result<UserRecord, AppError> {
    admin.require(&[Role::Admin])?;
    let id: Uuid = id.parse().map_err(|_| AppError::NotFound)?;
    let user = state.db.user_record(id).await?.ok_or(AppError::NotFound)?;
    if user.role == Role::Agent {
        return Err(AppError::NotFound);
    }
    admin.check_any_bank(&user.bank_ids)?;
    Ok(user)
}

/// Disables (`disable`) or enables a user of the admin's banks: a disabled user's sessions
/// end at once and their sign-in gets the answer of a wrong password. Not their own
/// account, nor one that also serves banks the admin does not administer.
pub(crate) async fn set_user_disabled(
    state: &AppState,
    admin: &UserAuth,
    user: &UserRecord,
    disable: bool,
    client: Option<IpAddr>,
) -> Result<(), AppError> {
    admin.require(&[Role::Admin])?;
    admin.check_any_bank(&user.bank_ids)?;
    if user.id == admin.user.user_id {
        return Err(AccountProblem::OwnAccount.into());
    }
    if !banks_ok(admin, &user.bank_ids) {
        return Err(AccountProblem::OtherBanks.into());
    }
    let now = state.now_ms();
    let action = if disable {
        AuditAction::UserDisabled
    } else {
        AuditAction::UserEnabled
    };
    let entry = AuditEntry::about_user(now, action, Some(user.id))
        .by(admin.user.user_id)
        .from_addr(client);
    state
        .db
        .set_user_disabled(
            user.id,
            disable.then_some(now),
            now,
            &entry.per_bank(&user.bank_ids),
        )
        .await?;
    Ok(())
}

/// Sets a user's role and, among the admin's banks, which they serve (banks the admin does
/// not administer stay as they are). A role is the account's everywhere, so it changes
/// only for an account wholly within the admin's banks; an admin keeps their own role.
pub(crate) async fn set_user_access(
    state: &AppState,
    admin: &UserAuth,
    user: &UserRecord,
    role: Role,
    chosen: &[BankId],
    client: Option<IpAddr>,
) -> Result<(), AppError> {
    admin.require(&[Role::Admin])?;
    admin.check_any_bank(&user.bank_ids)?;
    if role == Role::Agent {
        return Err(AccountProblem::RoleInvalid.into());
    }
    if !banks_ok(admin, chosen) {
        return Err(AccountProblem::BanksInvalid.into());
    }
    if role != user.role {
        if user.id == admin.user.user_id {
            return Err(AccountProblem::OwnAccount.into());
        }
        if !banks_ok(admin, &user.bank_ids) {
            return Err(AccountProblem::OtherBanks.into());
        }
    }
    let mut banks: Vec<BankId> = user
        .bank_ids
        .iter()
        .copied()
        .filter(|b| !admin.sees(*b))
        .chain(chosen.iter().copied())
        .collect();
    banks.sort_by_key(ToString::to_string);
    banks.dedup();
    let added: Vec<String> = banks
        .iter()
        .filter(|b| !user.bank_ids.contains(b))
        .map(ToString::to_string)
        .collect();
    let removed: Vec<String> = user
        .bank_ids
        .iter()
        .filter(|b| !banks.contains(b))
        .map(ToString::to_string)
        .collect();
    if role == user.role && added.is_empty() && removed.is_empty() {
        return Ok(());
    }
    let now = state.now_ms();
    let entry = AuditEntry::about_user(now, AuditAction::UserAccessChanged, Some(user.id))
        .by(admin.user.user_id)
        .from_addr(client)
        .detail(json!({
            "role_before": user.role.as_str(),
            "role": role.as_str(),
            "banks_added": added,
            "banks_removed": removed,
        }));
    let mut concerned: Vec<BankId> = user.bank_ids.clone();
    concerned.extend(banks.iter().copied());
    concerned.sort_by_key(ToString::to_string);
    concerned.dedup();
    let concerned = shared_banks(admin, &concerned);
    state
        .db
        .set_user_access(user.id, role, &banks, &entry.per_bank(&concerned))
        .await?;
    Ok(())
}

/// An agent to create.
#[derive(Debug, Clone)]
pub struct NewAgentForm {
    /// Employee number, unique.
    pub employee_no: String,
    /// Display name.
    pub display_name: String,
    /// Banks, every one the admin's.
    pub banks: Vec<BankId>,
}

/// Every problem of a new agent's fields (empty: acceptable), before the database.
pub fn new_agent_problems(admin: &UserAuth, agent: &NewAgentForm) -> Vec<AccountProblem> {
    let mut out = Vec::new();
    if !employee_no_ok(agent.employee_no.trim()) {
        out.push(AccountProblem::EmployeeNoInvalid);
    }
    if !name_ok(agent.display_name.trim()) {
        out.push(AccountProblem::NameInvalid);
    }
    if !banks_ok(admin, &agent.banks) {
        out.push(AccountProblem::BanksInvalid);
    }
    out
}

/// Creates an agent of the admin's banks; their phone enrols with a code issued on the
/// agent's page (agents have no password: they sign in with their enrolled phone).
pub(crate) async fn create_agent(
    state: &AppState,
    admin: &UserAuth,
    agent: &NewAgentForm,
    client: Option<IpAddr>,
) -> Result<AgentId, AppError> {
    admin.require(&[Role::Admin])?;
    if let Some(p) = new_agent_problems(admin, agent).first() {
        return Err((*p).into());
    }
    let employee_no = agent.employee_no.trim();
    let id = AgentId::new();
    let user = NewUser {
        id: Uuid::now_v7(),
        login: format!("agent-{}", employee_no.to_ascii_lowercase()),
        display_name: agent.display_name.trim().to_owned(),
        role: Role::Agent,
        password_hash: None,
        bank_ids: agent.banks.clone(),
    };
    let now = state.now_ms();
    let entry = AuditEntry::new(
        now,
        AuditAction::AgentCreated,
        "agent",
        Some(id.to_string()),
    )
    .by(admin.user.user_id)
    .from_addr(client)
    .detail(json!({
        "user": user.id.to_string(),
        "banks": agent.banks.iter().map(ToString::to_string).collect::<Vec<_>>(),
    }));
    match state
        .db
        .create_agent(id, employee_no, &user, now, &entry.per_bank(&agent.banks))
        .await?
    {
        Created::Created => Ok(id),
        // The agent's sign-in name is made of the employee number.
        Created::EmployeeNoTaken | Created::LoginTaken => {
            Err(AccountProblem::EmployeeNoTaken.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_names_and_employee_numbers_are_plain() {
        assert!(login_ok("li.wei@pujiang"));
        assert!(!login_ok("li wei"));
        assert!(!login_ok("ab"));
        assert!(!login_ok("<img>"));
        assert!(employee_no_ok("PJ-0007"));
        assert!(!employee_no_ok("PJ 7"));
        assert!(!employee_no_ok(""));
        assert!(name_ok("王芳"));
        assert!(!name_ok("a\u{7}b"));
    }
}
