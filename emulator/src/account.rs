//! Account-level operations both services answer the same way: service properties (with
//! the Blob service's extra sections) and geo-replication stats on the secondary endpoint.

use crate::clock::rfc1123;
use crate::http::request::Service;
use crate::http::response::Reply;
use crate::protocol::error::{ErrorCode, Result, StorageError};
use crate::protocol::xml::Writer;
use crate::state::Ctx;
use http::StatusCode;

pub fn get_properties(ctx: &Ctx<'_>) -> Result<Reply> {
    let service = ctx.req.service;
    let props = ctx
        .app
        .store
        .service_properties(&ctx.route.account, service.name())?;
    Ok(Reply::xml(
        StatusCode::OK,
        props.to_xml(service == Service::Blob),
    ))
}

/// A partial update: sections left out keep their values. Answers 202 as Azure does.
pub async fn set_properties(ctx: &Ctx<'_>, body: &[u8]) -> Result<Reply> {
    let store = &ctx.app.store;
    let service = ctx.req.service.name();
    let mut props = (*store.service_properties(&ctx.route.account, service)?).clone();
    props.apply_xml(body)?;
    store
        .set_service_properties(&ctx.route.account, service, props)
        .await?;
    Ok(Reply::empty(StatusCode::ACCEPTED))
}

pub fn get_stats(ctx: &Ctx<'_>) -> Result<Reply> {
    if !ctx.route.secondary {
        // Stats are served by the secondary endpoint only, as in Azure.
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
