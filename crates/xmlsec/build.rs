//! Rust declarations of the few xmlsec functions and structures this crate calls, generated from
//! the installed xmlsec headers so that the structures' layouts are the installed library's.
//! samael (a dependency) links the libraries.

use std::env;
use std::path::PathBuf;
use std::process::Command;

const HEADER: &str = "#include <xmlsec/xmlsec.h>\n#include <xmlsec/keys.h>\n#include <xmlsec/xmldsig.h>\n#include <xmlsec/list.h>\n#include <xmlsec/buffer.h>\n#include <xmlsec/openssl/evp.h>\n";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let cflags = Command::new("xmlsec1-config")
        .arg("--cflags")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_else(|e| panic!("xmlsec1-config --cflags: {e} (install libxmlsec1-dev)"));
    let bindings = bindgen::Builder::default()
        .header_contents("rolegate_xmlsec.h", HEADER)
        .clang_args(cflags.split_whitespace())
        .allowlist_function(
            "xmlSecDSigCtx(Create|Destroy|Verify)|xmlSecDSigReferenceCtxGetPreDigestBuffer|\
             xmlSecPtrListGet(Size|Item)|xmlSecBufferGet(Data|Size)|\
             xmlSecKey(Create|Destroy|SetValue)|xmlSecKeyDataDestroy|xmlSecOpenSSLEvpKeyAdopt",
        )
        .allowlist_type("xmlSecDSigCtx|xmlSecDSigReferenceCtx|xmlSecDSigStatus")
        .allowlist_var("XMLSEC_DSIG_FLAGS_STORE_SIGNEDINFO_REFERENCES")
        .layout_tests(false)
        .generate_comments(false)
        .generate()
        .expect("xmlsec bindings");
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR")).join("xmlsec_ffi.rs");
    bindings.write_to_file(out).expect("write xmlsec bindings");
}
