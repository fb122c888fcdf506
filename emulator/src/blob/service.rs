//! Account-level blob operations of the Blob service alone (properties and stats are in
//! `account`).

use crate::http::response::Reply;
use crate::protocol::error::Result;
use crate::state::Ctx;
use http::StatusCode;

pub fn account_info(_ctx: &Ctx<'_>) -> Result<Reply> {
    let mut r = Reply::empty(StatusCode::OK);
    r.set("x-ms-sku-name", "Standard_RAGRS")
        .set("x-ms-account-kind", "StorageV2")
        .set("x-ms-is-hns-enabled", "false");
    Ok(r)
}
