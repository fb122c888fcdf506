//! Authentication and authorization: one entry point that picks Shared Key, Shared Key
//! Lite, account SAS, service SAS or anonymous, and checks what the operation needs.

pub mod delegation;
pub mod permissions;
pub mod sas;
pub mod shared_key;
pub mod token;

use crate::clock::Clock;
use crate::config::{Account, Accounts};
use crate::http::request::{RequestParts, Service};
use crate::protocol::error::{ErrorCode, Result, StorageError};
use crate::protocol::model::AccessPolicy;
use crate::router::{Operation, Route};
use sas::SasToken;

/// Where stored access policies (`si`) come from.
pub trait PolicySource {
    fn queue_policy(&self, account: &str, queue: &str, id: &str) -> Result<Option<AccessPolicy>>;
    fn container_policy(
        &self,
        account: &str,
        container: &str,
        id: &str,
    ) -> Result<Option<AccessPolicy>>;
    /// The container's public access level: None when it does not exist, Some(None) when
    /// private, Some(Some("blob" | "container")) otherwise.
    fn container_access(&self, account: &str, container: &str) -> Result<Option<Option<String>>>;
}

pub struct AuthContext<'a> {
    pub accounts: &'a Accounts,
    pub clock: &'a Clock,
    pub policies: &'a (dyn PolicySource + Sync),
    /// `--oauth basic`: bearer tokens are accepted (over TLS).
    pub oauth: bool,
}

/// Who the caller turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// Holds an account key (Shared Key / Lite).
    Owner,
    /// `create_only`: the SAS grants `c` but not `w`, so it may write new blobs but not
    /// overwrite existing ones (the handlers check, as only they know what exists).
    Sas {
        create_only: bool,
    },
    /// Holds a Microsoft Entra ID token (Azurite's basic level grants it every data
    /// operation, as if the principal had the Storage Blob/Queue Data Owner role).
    Token(token::TokenPrincipal),
    Anonymous,
}

/// Whether granted letters allow creating but not writing.
fn create_only(sp: &str) -> bool {
    sp.contains('c') && !sp.contains('w')
}

pub fn authorize(
    ctx: &AuthContext<'_>,
    req: &RequestParts,
    route: &Route,
    version: &str,
) -> Result<Principal> {
    if route.op == Operation::Preflight {
        return Ok(Principal::Anonymous);
    }
    if let Some(auth) = req.header("authorization") {
        if let Some(token) = bearer(auth) {
            return bearer_token(ctx, req, route, token).map(Principal::Token);
        }
        // The signature names its account; it must be the one addressed.
        shared_key(ctx, req, route, version, auth)?;
        return Ok(Principal::Owner);
    }
    let account = ctx.accounts.get(&route.account).ok_or_else(|| {
        StorageError::auth_failed(format!("The account '{}' does not exist.", route.account))
    })?;
    if let Some(token) = SasToken::from_query(&req.query) {
        if let Some(field) = SasToken::duplicated(&req.query) {
            return Err(StorageError::auth_failed(format!(
                "The SAS parameter '{field}' is given more than once."
            )));
        }
        let granted = if token.is_account_sas() {
            account_sas(ctx, req, route, account, &token)?
        } else {
            service_sas(ctx, req, route, account, &token)?
        };
        return Ok(Principal::Sas {
            create_only: create_only(&granted),
        });
    }
    anonymous(ctx, route, account)?;
    Ok(Principal::Anonymous)
}

/// The token of `Bearer <token>` (the scheme is case-insensitive).
pub fn bearer(auth: &str) -> Option<&str> {
    let auth = auth.trim();
    let (scheme, rest) = auth.split_once(' ').unwrap_or((auth, ""));
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

/// A bearer token: only with `--oauth basic`, only over TLS (as Azure), then checked.
pub fn bearer_token(
    ctx: &AuthContext<'_>,
    req: &RequestParts,
    route: &Route,
    token: &str,
) -> Result<token::TokenPrincipal> {
    if !ctx.oauth {
        return Err(StorageError::auth_failed(
            "Bearer (Microsoft Entra ID) tokens are accepted only when the emulator runs with --oauth basic (and HTTPS).",
        ));
    }
    if !req.tls {
        return Err(StorageError::auth_failed(
            "Authentication scheme Bearer is not allowed with HTTP.",
        ));
    }
    if ctx.accounts.get(&route.account).is_none() {
        return Err(StorageError::auth_failed(format!(
            "The account '{}' does not exist.",
            route.account
        )));
    }
    // The account's own URL here is also a storage audience.
    let own: Vec<String> = req
        .host()
        .map(|h| {
            vec![
                format!("https://{h}/{}", route.account),
                format!("https://{h}"),
            ]
        })
        .unwrap_or_default();
    token::validate(
        token,
        &route.account,
        route.service,
        ctx.clock.now_ms(),
        &own,
    )
}

/// Anonymous requests: only blob reads that the container's public access level allows.
/// Anything else on a container or blob answers 404, so private resources stay unseen.
fn anonymous(ctx: &AuthContext<'_>, route: &Route, account: &Account) -> Result<()> {
    let no_auth =
        || StorageError::auth_failed("No authentication information was found in the request.");
    let (Operation::Blob(op), Some(container)) = (&route.op, &route.container) else {
        return Err(no_auth());
    };
    let level = ctx
        .policies
        .container_access(&account.name, container)?
        .flatten();
    let allowed = match level.as_deref() {
        Some("container") => {
            permissions::anonymous_container_op(*op) || permissions::anonymous_blob_op(*op)
        }
        Some("blob") => permissions::anonymous_blob_op(*op),
        _ => false,
    };
    if allowed {
        Ok(())
    } else {
        Err(StorageError::new(ErrorCode::ResourceNotFound))
    }
}

fn shared_key(
    ctx: &AuthContext<'_>,
    req: &RequestParts,
    route: &Route,
    version: &str,
    auth: &str,
) -> Result<()> {
    let malformed = || {
        StorageError::new(ErrorCode::InvalidAuthenticationInfo).with_detail(
            "AuthenticationErrorDetail",
            "The Authorization header is malformed.",
        )
    };
    let (scheme, rest) = auth.trim().split_once(' ').ok_or_else(malformed)?;
    let (account_name, signature) = rest.trim().split_once(':').ok_or_else(malformed)?;
    let lite = match scheme {
        "SharedKey" => false,
        "SharedKeyLite" => true,
        "Bearer" => return Err(StorageError::auth_failed(
            "Bearer (Entra ID) tokens are not supported by this emulator; use Shared Key or SAS.",
        )),
        _ => return Err(malformed()),
    };
    let account = ctx.accounts.get(account_name).ok_or_else(|| {
        StorageError::auth_failed(format!("The account '{account_name}' does not exist."))
    })?;
    if account.name != route.account {
        return Err(StorageError::auth_failed(format!(
            "The account '{account_name}' of the signature does not own the requested account '{}'.",
            route.account
        )));
    }
    let date = req.header("date").unwrap_or("");
    if req.header("x-ms-date").is_none() && date.is_empty() {
        return Err(StorageError::auth_failed(
            "Request date header not specified.",
        ));
    }
    // The Date line is empty when x-ms-date is sent; some clients still put the Date value
    // there, so both readings are tried.
    let mut dates = vec![""];
    if !date.is_empty() {
        dates.insert(0, date);
    }
    // A secondary path is signed as sent; some clients strip the suffix first.
    let mut paths = vec![req.raw_path.clone()];
    if route.secondary {
        paths.push(req.raw_path.replacen(
            &format!("/{}-secondary", account.name),
            &format!("/{}", account.name),
            1,
        ));
    }
    let mut first_sts = None;
    for path in &paths {
        for d in &dates {
            let sts = if lite {
                shared_key::lite_string_to_sign(req, &account.name, path, version, d)
            } else {
                shared_key::string_to_sign(req, &account.name, path, version, d)
            };
            if account
                .keys
                .iter()
                .any(|k| shared_key::verify(k, &sts, signature))
            {
                return Ok(());
            }
            first_sts.get_or_insert(sts);
        }
    }
    let sts = first_sts.unwrap_or_default();
    Err(StorageError::auth_failed(format!(
        "The MAC signature found in the HTTP request '{signature}' is not the same as any computed signature. Server used following string to sign: '{sts}'."
    )))
}

fn check_signature(account: &Account, sts: &str, sig: &str) -> Result<()> {
    check_signed(&account.keys, sts, sig)
}

/// `sig` must be the HMAC of `sts` under one of `keys`.
fn check_signed(
    keys: impl IntoIterator<Item = impl AsRef<[u8]>>,
    sts: &str,
    sig: &str,
) -> Result<()> {
    if keys
        .into_iter()
        .any(|k| shared_key::verify(k.as_ref(), sts, sig))
    {
        Ok(())
    } else {
        Err(StorageError::auth_failed(format!(
            "Signature did not match. String to sign used was {}",
            sts.replace('\n', "\\n")
        )))
    }
}

fn account_sas(
    ctx: &AuthContext<'_>,
    req: &RequestParts,
    route: &Route,
    account: &Account,
    t: &SasToken,
) -> Result<String> {
    check_signature(
        account,
        &sas::account_string_to_sign(&account.name, t),
        &t.sig,
    )?;
    sas::check_window(t, &t.st, &t.se, ctx.clock.now_ms(), req.peer_ip, req.tls)?;
    let service_letter = match route.service {
        Service::Blob => 'b',
        Service::Queue => 'q',
    };
    if !t.ss.contains(service_letter) {
        return Err(StorageError::new(ErrorCode::AuthorizationServiceMismatch));
    }
    let mut need = permissions::account_sas_needs(&route.op)
        .ok_or_else(|| StorageError::new(ErrorCode::AuthorizationFailure))?;
    if let Some(letters) = permissions::delete_need(&route.op, req) {
        need.any_of = letters;
    }
    if !need.resource_types.chars().any(|c| t.srt.contains(c)) {
        return Err(StorageError::new(
            ErrorCode::AuthorizationResourceTypeMismatch,
        ));
    }
    if !need.any_of.chars().any(|c| t.sp.contains(c)) {
        return Err(StorageError::new(
            ErrorCode::AuthorizationPermissionMismatch,
        ));
    }
    Ok(t.sp.clone())
}

fn service_sas(
    ctx: &AuthContext<'_>,
    req: &RequestParts,
    route: &Route,
    account: &Account,
    t: &SasToken,
) -> Result<String> {
    // The signed resource, the stored policy's owner, and the letters the operation needs.
    let (sts, policy, need) = match route.service {
        Service::Queue => {
            // A queue SAS never reaches the account level.
            let Some(queue) = &route.queue else {
                return Err(StorageError::new(ErrorCode::AuthorizationFailure));
            };
            let policy = if t.si.is_empty() {
                None
            } else {
                Some(ctx.policies.queue_policy(&account.name, queue, &t.si)?)
            };
            (
                sas::queue_string_to_sign(&account.name, queue, t),
                policy,
                permissions::queue_sas_needs(&route.op),
            )
        }
        Service::Blob => {
            let Some(container) = &route.container else {
                return Err(StorageError::new(ErrorCode::AuthorizationFailure));
            };
            let blob = match t.sr.as_str() {
                "c" => None,
                "b" | "bs" | "bv" => Some(route.blob.as_deref().unwrap_or_default()),
                other => {
                    return Err(StorageError::auth_failed(format!(
                        "The signed resource '{other}' is not supported."
                    )))
                }
            };
            let policy = if t.si.is_empty() {
                None
            } else {
                Some(
                    ctx.policies
                        .container_policy(&account.name, container, &t.si)?,
                )
            };
            let snapshot = req
                .query
                .get("snapshot")
                .or(req.query.get("versionid"))
                .unwrap_or("");
            let snapshot = if t.sr == "bs" || t.sr == "bv" {
                snapshot
            } else {
                ""
            };
            let resource = sas::blob_resource(&account.name, container, blob, &t.sv);
            let sts = if t.is_user_delegation() {
                delegation::blob_string_to_sign(&resource, snapshot, t, req)
            } else {
                sas::blob_string_to_sign(&resource, snapshot, t)
            };
            (
                sts,
                policy,
                permissions::blob_sas_needs(&route.op, blob.is_some()),
            )
        }
    };
    if t.is_user_delegation() {
        if route.service != Service::Blob {
            return Err(StorageError::auth_failed(
                "A user delegation SAS is valid for the Blob service only.",
            ));
        }
        if !t.si.is_empty() {
            return Err(StorageError::auth_failed(
                "A user delegation SAS cannot refer to a stored access policy (si).",
            ));
        }
        let fields = delegation::key_fields(t, ctx.clock.now_ms())?;
        let keys = account.keys.iter().map(|k| delegation::key(k, &fields));
        check_signed(keys, &sts, &t.sig)?;
    } else {
        check_signature(account, &sts, &t.sig)?;
    }
    let mut sp = t.sp.clone();
    let mut st = t.st.clone();
    let mut se = t.se.clone();
    if let Some(policy) = policy {
        let policy = policy.ok_or_else(|| {
            StorageError::auth_failed(format!(
                "The stored access policy '{}' was not found.",
                t.si
            ))
        })?;
        // A field may come from the token or from the policy, never from both.
        for (field, from_policy, name) in [
            (&mut sp, &policy.permission, "sp"),
            (&mut st, &policy.start, "st"),
            (&mut se, &policy.expiry, "se"),
        ] {
            match (field.is_empty(), from_policy) {
                (false, Some(p)) if !p.is_empty() => {
                    return Err(StorageError::auth_failed(format!(
                        "'{name}' is given both in the SAS and in the stored access policy."
                    )))
                }
                (true, Some(p)) => *field = p.clone(),
                _ => {}
            }
        }
    }
    sas::check_window(t, &st, &se, ctx.clock.now_ms(), req.peer_ip, req.tls)?;
    // What a service SAS can never grant fails like a missing letter (as Azurite answers).
    let need = permissions::delete_need(&route.op, req)
        .or(need)
        .unwrap_or("");
    if !need.chars().any(|c| sp.contains(c)) {
        return Err(StorageError::new(
            ErrorCode::AuthorizationPermissionMismatch,
        ));
    }
    Ok(sp)
}
