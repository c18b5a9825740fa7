//! The real SpiceDB, in-process: its C library (`libspicedb.so`, loaded at run time) for unary
//! calls with serialized `authzed.api.v1` messages, and a tonic client on the unix socket it
//! serves the streaming calls (LookupResources, LookupSubjects) on.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::ptr::null_mut;

use hyper_util::rt::TokioIo;
use libloading::Library;
use prost::Message;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};
use zanzi::proto::v1::permissions_service_client::PermissionsServiceClient;
use zanzi::proto::v1::{
    CheckBulkPermissionsRequest, CheckBulkPermissionsResponse, CheckPermissionRequest,
    CheckPermissionResponse, DeleteRelationshipsRequest, DeleteRelationshipsResponse,
    ExpandPermissionTreeRequest, ExpandPermissionTreeResponse, WriteRelationshipsRequest,
    WriteRelationshipsResponse, WriteSchemaRequest, WriteSchemaResponse,
};

/// `char *spicedb_start(const char *options_json)`.
type StartFn = unsafe extern "C" fn(*const c_char) -> *mut c_char;
/// `char *spicedb_dispose(uint64 handle)`.
type DisposeFn = unsafe extern "C" fn(u64) -> *mut c_char;
/// `void spicedb_free(char *)`.
type FreeFn = unsafe extern "C" fn(*mut c_char);
/// `void spicedb_free_bytes(void *)`.
type FreeBytesFn = unsafe extern "C" fn(*mut c_void);
/// `void spicedb_<service>_<rpc>(handle, request, request_len, &out, &out_len, &err)`.
type RpcFn =
    unsafe extern "C" fn(u64, *const u8, c_int, *mut *mut u8, *mut c_int, *mut *mut c_char);

/// A running SpiceDB instance inside this process.
pub struct SpiceDb {
    handle: u64,
    dispose: DisposeFn,
    free: FreeFn,
    free_bytes: FreeBytesFn,
    write_schema: RpcFn,
    write_relationships: RpcFn,
    delete_relationships: RpcFn,
    check_permission: RpcFn,
    check_bulk_permissions: RpcFn,
    expand_permission_tree: RpcFn,
    /// The unix socket serving the streaming RPCs over gRPC.
    pub streaming_address: String,
}

/// Looks up `name` in `lib` and copies out the function pointer.
///
/// # Safety
/// `T` must be the function's real signature.
unsafe fn symbol<T: Copy>(lib: &'static Library, name: &str) -> Result<T, String> {
    let mut bytes = name.as_bytes().to_vec();
    bytes.push(0);
    // SAFETY: the caller names the right signature; the library is never unloaded.
    let sym = unsafe { lib.get::<T>(&bytes) }.map_err(|e| format!("symbol `{name}`: {e}"))?;
    Ok(*sym)
}

impl SpiceDb {
    /// Loads the library at `path` and starts SpiceDB with `options` (JSON, e.g.
    /// `{"datastore":"memory"}`).
    pub fn start(path: &str, options: &serde_json::Value) -> Result<Self, String> {
        // SAFETY: loading runs the Go runtime's initialisers, which is what the library is
        // for. It is leaked on purpose: a Go runtime cannot be unloaded.
        let lib: &'static Library = Box::leak(Box::new(
            unsafe { Library::new(path) }.map_err(|e| format!("loading `{path}`: {e}"))?,
        ));
        // SAFETY: the signatures are those of the library's exported C functions.
        let (start, dispose, free, free_bytes) = unsafe {
            (
                symbol::<StartFn>(lib, "spicedb_start")?,
                symbol::<DisposeFn>(lib, "spicedb_dispose")?,
                symbol::<FreeFn>(lib, "spicedb_free")?,
                symbol::<FreeBytesFn>(lib, "spicedb_free_bytes")?,
            )
        };
        // SAFETY: as above; every RPC function has the same signature.
        let (write_schema, write_relationships, delete_relationships, check_permission) = unsafe {
            (
                symbol::<RpcFn>(lib, "spicedb_schema_write_schema")?,
                symbol::<RpcFn>(lib, "spicedb_permissions_write_relationships")?,
                symbol::<RpcFn>(lib, "spicedb_permissions_delete_relationships")?,
                symbol::<RpcFn>(lib, "spicedb_permissions_check_permission")?,
            )
        };
        // SAFETY: as above.
        let (check_bulk_permissions, expand_permission_tree) = unsafe {
            (
                symbol::<RpcFn>(lib, "spicedb_permissions_check_bulk_permissions")?,
                symbol::<RpcFn>(lib, "spicedb_permissions_expand_permission_tree")?,
            )
        };
        let options = CString::new(options.to_string()).map_err(|e| e.to_string())?;
        // SAFETY: a NUL-terminated string in; a string out that we free with spicedb_free.
        let reply = unsafe { take_string(start(options.as_ptr()), free) }
            .ok_or("spicedb_start returned nothing")?;
        let reply: serde_json::Value =
            serde_json::from_str(&reply).map_err(|e| format!("spicedb_start: {e}: {reply}"))?;
        if reply["success"] != true {
            return Err(format!("spicedb_start failed: {}", reply["error"]));
        }
        let data = &reply["data"];
        let handle = data["handle"]
            .as_u64()
            .ok_or_else(|| format!("spicedb_start: no handle in {reply}"))?;
        let streaming_address = data["streaming_address"]
            .as_str()
            .ok_or_else(|| format!("spicedb_start: no streaming address in {reply}"))?
            .to_string();
        Ok(Self {
            handle,
            dispose,
            free,
            free_bytes,
            write_schema,
            write_relationships,
            delete_relationships,
            check_permission,
            check_bulk_permissions,
            expand_permission_tree,
            streaming_address,
        })
    }

    /// One unary RPC: serialize, call, deserialize.
    fn call<Req: Message, Resp: Message + Default>(
        &self,
        rpc: RpcFn,
        request: &Req,
    ) -> Result<Resp, String> {
        let bytes = request.encode_to_vec();
        let len = c_int::try_from(bytes.len()).map_err(|_| "request too large".to_string())?;
        let mut out: *mut u8 = null_mut();
        let mut out_len: c_int = 0;
        let mut err: *mut c_char = null_mut();
        // SAFETY: the request buffer outlives the call; the out-pointers are valid locals.
        unsafe {
            rpc(
                self.handle,
                bytes.as_ptr(),
                len,
                &mut out,
                &mut out_len,
                &mut err,
            )
        };
        // SAFETY: a non-null error is a NUL-terminated string the library allocated.
        if let Some(message) = unsafe { take_string(err, self.free) } {
            return Err(message);
        }
        if out.is_null() {
            return Resp::decode(&[][..]).map_err(|e| e.to_string());
        }
        let out_len = usize::try_from(out_len).map_err(|_| "negative response length")?;
        // SAFETY: on success the library hands us `out_len` bytes at `out`, ours to free.
        let decoded = Resp::decode(unsafe { std::slice::from_raw_parts(out, out_len) });
        // SAFETY: `out` came from the library and is freed once.
        unsafe { (self.free_bytes)(out.cast()) };
        decoded.map_err(|e| e.to_string())
    }

    /// SchemaService.WriteSchema.
    pub fn write_schema(
        &self,
        request: &WriteSchemaRequest,
    ) -> Result<WriteSchemaResponse, String> {
        self.call(self.write_schema, request)
    }

    /// PermissionsService.WriteRelationships.
    pub fn write_relationships(
        &self,
        request: &WriteRelationshipsRequest,
    ) -> Result<WriteRelationshipsResponse, String> {
        self.call(self.write_relationships, request)
    }

    /// PermissionsService.DeleteRelationships.
    pub fn delete_relationships(
        &self,
        request: &DeleteRelationshipsRequest,
    ) -> Result<DeleteRelationshipsResponse, String> {
        self.call(self.delete_relationships, request)
    }

    /// PermissionsService.CheckPermission.
    pub fn check_permission(
        &self,
        request: &CheckPermissionRequest,
    ) -> Result<CheckPermissionResponse, String> {
        self.call(self.check_permission, request)
    }

    /// PermissionsService.CheckBulkPermissions.
    pub fn check_bulk_permissions(
        &self,
        request: &CheckBulkPermissionsRequest,
    ) -> Result<CheckBulkPermissionsResponse, String> {
        self.call(self.check_bulk_permissions, request)
    }

    /// PermissionsService.ExpandPermissionTree.
    #[allow(dead_code)] // the benchmark shares this module and does not expand
    pub fn expand_permission_tree(
        &self,
        request: &ExpandPermissionTreeRequest,
    ) -> Result<ExpandPermissionTreeResponse, String> {
        self.call(self.expand_permission_tree, request)
    }

    /// A gRPC client for the streaming RPCs, over the unix socket.
    pub async fn streaming_client(&self) -> Result<PermissionsServiceClient<Channel>, String> {
        let path = self
            .streaming_address
            .strip_prefix("unix://")
            .unwrap_or(&self.streaming_address)
            .to_string();
        // The URI is required by the API but unused: every connection goes to the socket.
        let channel =
            Endpoint::try_from("http://spicedb.invalid")
                .map_err(|e| e.to_string())?
                .connect_with_connector(tower::service_fn(move |_: Uri| {
                    let path = path.clone();
                    async move {
                        Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?))
                    }
                }))
                .await
                .map_err(|e| format!("connecting to {}: {e}", self.streaming_address))?;
        Ok(PermissionsServiceClient::new(channel))
    }
}

impl Drop for SpiceDb {
    fn drop(&mut self) {
        // SAFETY: the handle came from spicedb_start; the reply is freed with spicedb_free.
        if let Some(reply) = unsafe { take_string((self.dispose)(self.handle), self.free) } {
            if !reply.contains("\"success\":true") {
                eprintln!("spicedb_dispose: {reply}");
            }
        }
    }
}

/// Copies a library-allocated C string and frees it; `None` for a null pointer.
///
/// # Safety
/// `ptr` is null or a NUL-terminated string that `free` releases.
unsafe fn take_string(ptr: *mut c_char, free: FreeFn) -> Option<String> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: per the contract above.
    let text = unsafe { CStr::from_ptr(ptr) }
        .to_string_lossy()
        .into_owned();
    // SAFETY: freed once, by the allocator's own function.
    unsafe { free(ptr) };
    Some(text)
}
