//! libproc and sysctl. Compile-checked for aarch64-apple-darwin on Linux;
//! not run there (no macOS machine in this project's CI).
#![allow(unsafe_code)]

use std::mem::{MaybeUninit, size_of};

use libc::{c_char, c_int, c_void};

/// A NUL-terminated C buffer as text (lossy).
fn text(buf: &[c_char]) -> String {
    let bytes: Vec<u8> = buf
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The executable's path.
pub fn exe(pid: u32) -> String {
    let mut buf = [0u8; libc::PROC_PIDPATHINFO_MAXSIZE as usize];
    // SAFETY: the buffer is writable for its whole length, which is passed.
    let n = unsafe {
        libc::proc_pidpath(
            pid as c_int,
            buf.as_mut_ptr().cast::<c_void>(),
            buf.len() as u32,
        )
    };
    if n <= 0 {
        return String::new();
    }
    String::from_utf8_lossy(&buf[..(n as usize).min(buf.len())]).into_owned()
}

/// One `proc_pidinfo` record of type `T`, if the system gives a whole one.
fn pidinfo<T>(pid: u32, flavor: c_int) -> Option<T> {
    let mut info = MaybeUninit::<T>::zeroed();
    let size = size_of::<T>() as c_int;
    // SAFETY: `info` is writable for `size` bytes; the record is plain data,
    // valid for any bytes, and used only when the call filled all of it.
    let n = unsafe { libc::proc_pidinfo(pid as c_int, flavor, 0, info.as_mut_ptr().cast(), size) };
    if n == size {
        // SAFETY: fully written above.
        Some(unsafe { info.assume_init() })
    } else {
        None
    }
}

/// The working directory.
pub fn cwd(pid: u32) -> String {
    pidinfo::<libc::proc_vnodepathinfo>(pid, libc::PROC_PIDVNODEPATHINFO)
        .map(|v| {
            let path = v.pvi_cdir.vip_path;
            let flat: Vec<c_char> = path.iter().flatten().copied().collect();
            text(&flat)
        })
        .unwrap_or_default()
}

/// The parent's pid and this process's short name.
pub fn parent(pid: u32) -> Option<(u32, String)> {
    let info = pidinfo::<libc::proc_bsdinfo>(pid, libc::PROC_PIDTBSDINFO)?;
    Some((info.pbi_ppid, text(&info.pbi_comm)))
}

/// The command line: `sysctl(KERN_PROCARGS2)` gives argc, the executable
/// path, padding NULs, then argc NUL-terminated arguments.
pub fn cmdline(pid: u32) -> String {
    let mut mib = [libc::CTL_KERN, libc::KERN_PROCARGS2, pid as c_int];
    let mut size: libc::size_t = 0;
    // SAFETY: a size query: no buffer, `size` is writable.
    let rc = unsafe {
        libc::sysctl(
            mib.as_mut_ptr(),
            3,
            std::ptr::null_mut(),
            &mut size,
            std::ptr::null_mut(),
            0,
        )
    };
    if rc != 0 || size < size_of::<c_int>() {
        return String::new();
    }
    let mut buf = vec![0u8; size];
    // SAFETY: `buf` is writable for `size` bytes, which is passed and
    // updated to the length written.
    let rc = unsafe {
        libc::sysctl(
            mib.as_mut_ptr(),
            3,
            buf.as_mut_ptr().cast::<c_void>(),
            &mut size,
            std::ptr::null_mut(),
            0,
        )
    };
    if rc != 0 || size < size_of::<c_int>() {
        return String::new();
    }
    buf.truncate(size);
    let argc = i32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]).max(0) as usize;
    let rest = &buf[size_of::<c_int>()..];
    // Skip the executable path and the NULs after it.
    let Some(end) = rest.iter().position(|&b| b == 0) else {
        return String::new();
    };
    let args = &rest[end..];
    let start = args.iter().position(|&b| b != 0).unwrap_or(args.len());
    args[start..]
        .split(|&b| b == 0)
        .take(argc)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Refuses debuggers for good (`PT_DENY_ATTACH`): no process, not even
/// one of the same user, can attach to the daemon afterwards.
pub fn deny_attach() -> std::io::Result<()> {
    // SAFETY: PT_DENY_ATTACH takes no address or data.
    let rc = unsafe { libc::ptrace(libc::PT_DENY_ATTACH, 0, std::ptr::null_mut(), 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
