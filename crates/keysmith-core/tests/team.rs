//! The team on a real SQLite file: the whole role table through the core API, removal in
//! one transaction, ownership transfer, sign-in throttling, and the audit chain's tamper
//! detection.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Mutex;

use keysmith_core::store::Backend;
use keysmith_core::testkit::{self, team_registry, Person, Surface, PASSPHRASE};
use keysmith_core::{Error, Registry};
use keysmith_types::{AuditFilter, ErrorCode, KeySummary, Role};

struct Core {
    registry: Registry,
    actor: Mutex<String>,
}

impl Core {
    fn me(&self) -> String {
        self.actor.lock().unwrap().clone()
    }
}

fn code<T>(r: Result<T, Error>) -> Result<(), ErrorCode> {
    r.map(|_| ()).map_err(|e| e.code())
}

impl Surface for Core {
    async fn act_as(&self, actor: &Person) {
        *self.actor.lock().unwrap() = actor.id.clone();
    }
    async fn generate_key(&self, name: &str) -> Result<(), ErrorCode> {
        code(self.registry.generate_key(&self.me(), name).await)
    }
    async fn list_keys(&self) -> Result<Vec<KeySummary>, ErrorCode> {
        self.registry
            .list_keys(&self.me())
            .await
            .map_err(|e| e.code())
    }
    async fn revoke_key(&self, key_id: &str) -> Result<(), ErrorCode> {
        code(self.registry.revoke_key(&self.me(), key_id, "REVOKE").await)
    }
    async fn pause_key(&self, key_id: &str) -> Result<(), ErrorCode> {
        code(self.registry.pause_key(&self.me(), key_id).await)
    }
    async fn roll_key(&self, key_id: &str) -> Result<(), ErrorCode> {
        code(self.registry.roll_key(&self.me(), key_id, 3_600_000).await)
    }
    async fn key_usage(&self, key_id: &str) -> Result<(), ErrorCode> {
        code(self.registry.key_usage(&self.me(), key_id, 30).await)
    }
    async fn add_member(&self, name: &str, role: Role) -> Result<(), ErrorCode> {
        code(
            self.registry
                .add_member(&self.me(), name, role, PASSPHRASE)
                .await,
        )
    }
    async fn change_role(&self, member_id: &str, role: Role) -> Result<(), ErrorCode> {
        code(self.registry.change_role(&self.me(), member_id, role).await)
    }
    async fn remove_member(&self, member_id: &str) -> Result<(), ErrorCode> {
        code(
            self.registry
                .remove_member(&self.me(), member_id, "REMOVE")
                .await,
        )
    }
    async fn transfer_ownership(&self, member_id: &str) -> Result<(), ErrorCode> {
        code(
            self.registry
                .transfer_ownership(&self.me(), member_id)
                .await,
        )
    }
    async fn list_members(&self) -> Result<(), ErrorCode> {
        code(self.registry.list_members(&self.me()).await)
    }
    async fn audit(&self) -> Result<(), ErrorCode> {
        code(
            self.registry
                .audit_entries(&self.me(), &AuditFilter::default())
                .await,
        )
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_cell_of_the_role_table_through_the_core_api() {
    let checked = testkit::walk_role_table(|registry| Core {
        registry,
        actor: Mutex::new(String::new()),
    })
    .await;
    assert!(checked > 150, "only {checked} cells");
}

#[tokio::test]
async fn removing_a_member_revokes_their_keys_and_audits_each() {
    let (_d, r, team) = team_registry().await;
    let owner = team.get(Role::Owner, false).clone();
    let manager = team.get(Role::Manager, false).clone();
    let extra = r.generate_key(&manager.id, "second").await.unwrap();
    let preview = r.removal_preview(&owner.id, &manager.id).await.unwrap();
    assert_eq!(preview.len(), 2);
    let err = r
        .remove_member(&owner.id, &manager.id, "remove")
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::RemoveConfirmationMismatch);
    let revoked = r
        .remove_member(&owner.id, &manager.id, "REMOVE")
        .await
        .unwrap();
    assert_eq!(revoked.len(), 2);
    assert!(matches!(
        r.verify(extra.secret.expose()).await,
        Err(Error::KeyRevoked)
    ));
    assert!(matches!(
        r.actor(&manager.id).await,
        Err(Error::NotSignedIn)
    ));
    let entries = r
        .audit_entries(&owner.id, &AuditFilter::default())
        .await
        .unwrap();
    let actions: Vec<&str> = entries.iter().take(3).map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["member_removed", "key_revoked", "key_revoked"]);
    assert!(matches!(
        r.sign_in(&manager.name, PASSPHRASE).await,
        Err(Error::BadCredentials)
    ));
    // Removing yourself, the Owner, or an unknown member is refused.
    let err = r
        .remove_member(&owner.id, &owner.id, "REMOVE")
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidTarget);
    let admin = team.get(Role::Admin, false).clone();
    let err = r
        .remove_member(&admin.id, &owner.id, "REMOVE")
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotPermitted);
    let err = r
        .remove_member(&owner.id, "nobody", "REMOVE")
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound);
    let err = r
        .remove_member(&owner.id, &manager.id, "REMOVE")
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        ErrorCode::NotFound,
        "a removed member is a stale id"
    );
}

#[tokio::test]
async fn a_failing_statement_mid_removal_leaves_nothing_half_done() {
    let (_d, r, team) = team_registry().await;
    let owner = team.get(Role::Owner, false).clone();
    let manager = team.get(Role::Manager, false).clone();
    r.generate_key(&manager.id, "second").await.unwrap();
    let before = testkit::fingerprint(r.pool()).await;
    // Injected failure: the last statement of the removal (its audit entry) fails.
    raw(
        &r,
        dialect(
            &r,
            "CREATE TRIGGER inject_failure BEFORE INSERT ON audit_log \
             WHEN NEW.action = 'member_removed' BEGIN SELECT RAISE(ABORT, 'injected'); END",
            "CREATE FUNCTION inject() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
             IF NEW.action = 'member_removed' THEN RAISE EXCEPTION 'injected'; END IF; \
             RETURN NEW; END $$; \
             CREATE TRIGGER inject_failure BEFORE INSERT ON audit_log \
             FOR EACH ROW EXECUTE FUNCTION inject()",
        ),
    )
    .await;
    let err = r
        .remove_member(&owner.id, &manager.id, "REMOVE")
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Storage);
    assert_eq!(
        testkit::fingerprint(r.pool()).await,
        before,
        "a half-done removal survived"
    );
    raw(
        &r,
        dialect(
            &r,
            "DROP TRIGGER inject_failure",
            "DROP TRIGGER inject_failure ON audit_log",
        ),
    )
    .await;
    assert_eq!(
        r.remove_member(&owner.id, &manager.id, "REMOVE")
            .await
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn ownership_moves_in_one_step_and_there_is_one_owner() {
    let (_d, r, team) = team_registry().await;
    let owner = team.get(Role::Owner, false).clone();
    let admin = team.get(Role::Admin, false).clone();
    let err = r
        .transfer_ownership(&owner.id, &owner.id)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidTarget);
    // Not to a member who still has the initial passphrase the Owner gave them: the Owner
    // knows it and could sign in as the new Owner first. Nothing changes.
    let invited = r
        .add_member(&owner.id, "Ivy", Role::Admin, "initial passphrase")
        .await
        .unwrap();
    let audit_before = r
        .audit_entries(&owner.id, &AuditFilter::default())
        .await
        .unwrap()
        .len();
    let err = r
        .transfer_ownership(&owner.id, &invited.id)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidTarget);
    assert!(err.to_string().contains("has not signed in yet"), "{err}");
    assert_eq!(r.actor(&owner.id).await.unwrap().role, Role::Owner);
    assert_eq!(r.actor(&invited.id).await.unwrap().role, Role::Admin);
    assert_eq!(
        r.audit_entries(&owner.id, &AuditFilter::default())
            .await
            .unwrap()
            .len(),
        audit_before
    );
    r.transfer_ownership(&owner.id, &admin.id).await.unwrap();
    assert_eq!(r.actor(&admin.id).await.unwrap().role, Role::Owner);
    assert_eq!(r.actor(&owner.id).await.unwrap().role, Role::Admin);
    let owners = keysmith_core::store::list_members(r.pool())
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.role == "owner")
        .count();
    assert_eq!(owners, 1);
    // The old Owner's key now verifies with the Admin role: access follows the creator's role.
    let old_key = r.generate_key(&owner.id, "after transfer").await.unwrap();
    let v = r.verify(old_key.secret.expose()).await.unwrap();
    assert_eq!(v.creator.role, Role::Admin);
}

#[tokio::test]
async fn member_input_is_checked() {
    let (_d, r, team) = team_registry().await;
    let owner = team.get(Role::Owner, false).clone();
    let admin = team.get(Role::Admin, false).clone();
    for (name, pass, want) in [
        ("", PASSPHRASE, ErrorCode::InvalidName),
        ("admin1", PASSPHRASE, ErrorCode::DuplicateName),
        ("New", "short", ErrorCode::InvalidPassphrase),
    ] {
        let err = r
            .add_member(&owner.id, name, Role::Viewer, pass)
            .await
            .unwrap_err();
        assert_eq!(err.code(), want, "{name:?}");
    }
    let err = r
        .change_role(&admin.id, &admin.id, Role::Viewer)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidTarget);
    let err = r
        .change_role(&owner.id, "stale", Role::Viewer)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound);

    // A new member must change the initial passphrase; the new one then works.
    let m = r
        .add_member(&owner.id, "Nia", Role::Manager, PASSPHRASE)
        .await
        .unwrap();
    assert!(m.must_change_passphrase);
    let err = r
        .change_passphrase(&m.id, "wrong passphrase", "a brand new one")
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::BadCredentials);
    r.change_passphrase(&m.id, PASSPHRASE, "a brand new one")
        .await
        .unwrap();
    assert!(
        !r.sign_in("Nia", "a brand new one")
            .await
            .unwrap()
            .must_change_passphrase
    );
}

#[tokio::test]
async fn failed_sign_ins_are_slowed_down_and_audited() {
    let (_d, r, team) = team_registry().await;
    let owner = team.get(Role::Owner, false).clone();
    for _ in 0..3 {
        assert!(matches!(
            r.sign_in("Olive", "wrong guess!").await,
            Err(Error::BadCredentials)
        ));
    }
    // The third failure imposes a wait: even the right passphrase is not checked now.
    let err = r.sign_in("Olive", PASSPHRASE).await.unwrap_err();
    assert!(matches!(err, Error::TooManyAttempts { retry_after_secs } if retry_after_secs >= 1));
    assert_eq!(keysmith_core::registry::sign_in_delay_ms(3), Some(1000));
    assert_eq!(keysmith_core::registry::sign_in_delay_ms(4), Some(2000));
    assert_eq!(keysmith_core::registry::sign_in_delay_ms(40), Some(300_000));
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    r.sign_in("Olive", PASSPHRASE).await.unwrap();
    let filter = AuditFilter {
        action: Some("sign_in_failed".into()),
        ..AuditFilter::default()
    };
    assert_eq!(r.audit_entries(&owner.id, &filter).await.unwrap().len(), 3);
}

async fn chain_problem(r: &Registry) -> Option<String> {
    r.audit_chain().await.unwrap().problem
}

async fn raw(r: &Registry, sql: &str) {
    r.pool().execute_raw(sql).await.unwrap();
}

/// The statement for the store's engine: SQLite's or PostgreSQL's.
fn dialect<'a>(r: &Registry, sqlite: &'a str, postgres: &'a str) -> &'a str {
    match r.pool().backend() {
        Backend::Sqlite => sqlite,
        Backend::Postgres => postgres,
    }
}

#[tokio::test]
async fn the_audit_log_is_append_only_and_tampering_is_named() {
    for tamper in ["edit", "delete", "reorder"] {
        let (_d, r, _team) = team_registry().await;
        let status = r.audit_chain().await.unwrap();
        assert!(status.intact && status.entries >= 5, "{status:?}");
        for refused in [
            "UPDATE audit_log SET detail = 'x' WHERE seq = 2",
            "DELETE FROM audit_log WHERE seq = 2",
        ] {
            let err = r.pool().execute_raw(refused).await.unwrap_err();
            assert!(
                format!("{:?}", err).contains("append-only"),
                "{refused}: {err:?}"
            );
        }
        raw(
            &r,
            dialect(
                &r,
                "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete",
                "DROP TRIGGER audit_log_append_only ON audit_log",
            ),
        )
        .await;
        let problem = match tamper {
            "edit" => {
                raw(
                    &r,
                    "UPDATE audit_log SET target = 'someone else' WHERE seq = 3",
                )
                .await;
                chain_problem(&r).await.unwrap()
            }
            "delete" => {
                raw(&r, "DELETE FROM audit_log WHERE seq = 3").await;
                chain_problem(&r).await.unwrap()
            }
            _ => {
                raw(&r, "UPDATE audit_log SET seq = -3 WHERE seq = 3").await;
                raw(&r, "UPDATE audit_log SET seq = 3 WHERE seq = 4").await;
                raw(&r, "UPDATE audit_log SET seq = 4 WHERE seq = -3").await;
                chain_problem(&r).await.unwrap()
            }
        };
        assert!(problem.contains("entry 3"), "{tamper}: {problem}");
    }
}
