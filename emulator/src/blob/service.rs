//! Account-level blob operations: account information, service properties and stats.

use crate::clock::rfc1123;
use crate::error::{ErrorCode, Result, StorageError};
use crate::response::Reply;
use crate::state::Ctx;
use crate::xml::Writer;
use http::StatusCode;

pub fn account_info(_ctx: &Ctx<'_>) -> Result<Reply> {
    let mut r = Reply::empty(StatusCode::OK);
    r.set("x-ms-sku-name", "Standard_RAGRS")
        .set("x-ms-account-kind", "StorageV2")
        .set("x-ms-is-hns-enabled", "false");
    Ok(r)
}

pub fn get_properties(ctx: &Ctx<'_>) -> Result<Reply> {
    let props = ctx
        .app
        .store
        .service_properties(&ctx.route.account, "blob")?;
    Ok(Reply::xml(StatusCode::OK, props.to_xml(true)))
}

pub async fn set_properties(ctx: &Ctx<'_>, body: &[u8]) -> Result<Reply> {
    let store = &ctx.app.store;
    let mut props = store.service_properties(&ctx.route.account, "blob")?;
    props.apply_xml(body)?;
    store
        .set_service_properties(&ctx.route.account, "blob", props)
        .await?;
    Ok(Reply::empty(StatusCode::ACCEPTED))
}

pub fn get_stats(ctx: &Ctx<'_>) -> Result<Reply> {
    if !ctx.route.secondary {
        return Err(StorageError::new(ErrorCode::InvalidQueryParameterValue)
            .with_message("Service statistics are only available on the secondary endpoint (account name with the -secondary suffix).")
            .with_detail("QueryParameterName", "comp")
            .with_detail("QueryParameterValue", "stats"));
    }
    let mut w = Writer::new();
    w.open("StorageServiceStats")
        .open("GeoReplication")
        .elem("Status", "live")
        .elem("LastSyncTime", &rfc1123(ctx.app.clock.now_ms()))
        .close("GeoReplication")
        .close("StorageServiceStats");
    Ok(Reply::xml(StatusCode::OK, w.finish()))
}
