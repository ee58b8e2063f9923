//! `[admin]`: the address, the bearer token, and the rule that an admin
//! API other hosts can reach needs one (the why is in `crate::admin`).

use super::fields::Leafy;
use super::{Check, Ctx};
use crate::admin::{self, Admin, AdminToken, TokenSource};
use crate::env::{ADMIN_TOKEN_VAR, Environment};
use crate::path::FieldPath;
use crate::raw::RawAdmin;
use crate::secret::Secret;

/// Checks `[admin]`, reading the token file and decrypting `token`.
pub(super) fn admin(ctx: &mut Ctx<'_>, raw: &RawAdmin, path: &FieldPath) -> Check<Admin> {
    let address = ctx.required(&raw.address, path, "address", Ctx::address);
    let present: Vec<&str> = [
        ("token_file", raw.token_file.is_some()),
        ("token", raw.token.is_some()),
    ]
    .into_iter()
    .filter_map(|(key, set)| set.then_some(key))
    .collect();
    let one_source = ctx.at_most_one(
        path,
        &present,
        "the admin token comes from one place (token_file for plain text, token for an enc: value)",
    );
    let from_file = ctx.optional(&raw.token_file, path, "token_file", |c, l, p| {
        let (secret, file) = c.secret_file(l, p)?;
        token(c, l, p, secret, TokenSource::File(file))
    });
    let written = ctx.optional(&raw.token, path, "token", |c, l, p| {
        let (secret, key) = c.secret(l, p, "name a file holding it with token_file")?;
        token(c, l, p, secret, TokenSource::Encrypted(key))
    });
    let from_env = match Environment::get(&ctx.env().admin_token) {
        Some(value) => AdminToken::from_env(value)
            .map(Some)
            .map_err(|e| ctx.error_at(None, path, e)),
        None => Ok(None),
    };
    let (address, from_file, written, from_env) = (address?, from_file?, written?, from_env?);
    one_source?;
    let configured = from_file.or(written);
    if from_env.is_some() && configured.is_some() {
        let written_at = [("token_file", &raw.token_file), ("token", &raw.token)]
            .into_iter()
            .find_map(|(key, field)| Some((key, field.as_ref()?)));
        if let Some((key, leaf)) = written_at {
            ctx.warn_at(
                leaf,
                &path.key(key),
                format!("{ADMIN_TOKEN_VAR} is set and takes precedence over this {key}"),
            );
        }
    }
    let token = from_env.or(configured);
    if token.is_none() && !admin::is_loopback(address) {
        return Err(ctx.at_value(&path.key("address"), admin::exposed_without_token(address)));
    }
    Ok(Admin { address, token })
}

/// A token that follows the rules of [`admin::token_problem`].
fn token(
    ctx: &mut Ctx<'_>,
    leaf: Leafy<'_>,
    path: &FieldPath,
    secret: Secret,
    source: TokenSource,
) -> Check<AdminToken> {
    if let Some(problem) = admin::token_problem(secret.expose()) {
        let message = match &source {
            TokenSource::File(_) => format!("the token in the file: {problem}"),
            _ => format!("the decrypted token: {problem}"),
        };
        return Err(ctx.at_leaf(leaf, path, message));
    }
    Ok(AdminToken { secret, source })
}
