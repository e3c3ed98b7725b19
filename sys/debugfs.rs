// SPDX-License-Identifier: GPL-2.0

//! debugfs directories and files whose contents Rust produces: safe wrappers over `debugfs_create_*`.
//!
//! A file's text is made in one go when it is first read after `open` (`single_open`), so reads of any
//! size, down to one byte at a time, return exactly what one large read returns.
//!
//! C header: [`include/linux/debugfs.h`](srctree/include/linux/debugfs.h)

use super::bindings;
use super::task::Current;
use core::fmt;
use core::marker::PhantomData;
use core::mem::MaybeUninit;
use kernel::error::{from_result, VTABLE_DEFAULT_ERROR};
use kernel::ffi::{c_char, c_int, c_void};
use kernel::prelude::*;
use kernel::sync::Arc;
use kernel::uaccess::{UserPtr, UserSlice};

/// The longest write a file accepts; anything longer is `-EINVAL` without being read.
pub(crate) const MAX_WRITE: usize = 64;

/// Turns an `ERR_PTR`-or-pointer return value into a `Result`.
fn check_ptr<T>(ptr: *mut T) -> Result<*mut T> {
    // SAFETY: `IS_ERR` only compares the pointer value.
    if unsafe { bindings::rrp_is_err(ptr.cast_const().cast()) } {
        // Only `ERR_PTR` values are reported as errors, and they hold a negative errno.
        Err(Error::from_errno(ptr as isize as c_int))
    } else {
        Ok(ptr)
    }
}

/// A debugfs directory, shared by what is created in it.
///
/// Each subdirectory and file keeps its directory, so a directory is removed only after everything
/// made in it (removing it first would free their dentries under them).
#[derive(Clone)]
pub(crate) struct Dir(Arc<DirNode>);

/// # Invariants
///
/// `dentry` is a directory created by `debugfs_create_dir` (in `_parent`'s, if any) that stays until
/// `self` is dropped.
struct DirNode {
    dentry: *mut bindings::dentry,
    _parent: Option<Dir>,
}

// SAFETY: A dentry pointer may be used and removed from any thread.
unsafe impl Send for DirNode {}
// SAFETY: `DirNode` offers no method that mutates through `&self`.
unsafe impl Sync for DirNode {}

impl Dir {
    /// Creates the directory `name` at the top of debugfs.
    pub(crate) fn new(name: &CStr) -> Result<Self> {
        // SAFETY: `name` is a valid NUL-terminated string; a null parent means the debugfs root.
        let dentry = check_ptr(unsafe {
            bindings::debugfs_create_dir(name.as_char_ptr(), core::ptr::null_mut())
        })?;
        Self::node(dentry, None)
    }

    /// Creates the directory `name` in `self`.
    pub(crate) fn subdir(&self, name: &CStr) -> Result<Self> {
        // SAFETY: `name` is a valid NUL-terminated string; `self.dentry()` is a live directory.
        let dentry =
            check_ptr(unsafe { bindings::debugfs_create_dir(name.as_char_ptr(), self.dentry()) })?;
        Self::node(dentry, Some(self.clone()))
    }

    /// Owns `dentry`, just created; on failure to allocate, removes it again.
    fn node(dentry: *mut bindings::dentry, parent: Option<Dir>) -> Result<Self> {
        // INVARIANT: `debugfs_create_dir` succeeded (in `parent`).
        match Arc::new(
            DirNode {
                dentry,
                _parent: parent,
            },
            GFP_KERNEL,
        ) {
            Ok(node) => Ok(Self(node)),
            Err(e) => Err(e.into()),
        }
    }

    /// The directory's dentry, live while `self` is.
    fn dentry(&self) -> *mut bindings::dentry {
        self.0.dentry
    }
}

impl Drop for DirNode {
    fn drop(&mut self) {
        // SAFETY: By the type invariant `dentry` is ours and still present: everything made in it
        // keeps this node, so it has been removed already. `debugfs_remove` removes the directory.
        unsafe { bindings::debugfs_remove(self.dentry) };
    }
}

/// The text a file shows, built in memory (vmalloc-backed when large, so a big table never needs a
/// high-order allocation) and handed to `seq_file` in one piece.
pub(crate) struct Text(KVVec<u8>);

impl Text {
    fn new() -> Self {
        Self(KVVec::new())
    }
}

impl fmt::Write for Text {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0
            .extend_from_slice(s.as_bytes(), GFP_KERNEL)
            .map_err(|_| fmt::Error)
    }
}

/// Why a file's text could not be shown: an errno. Formatting into a [`Text`] fails only when the text
/// cannot grow, so a [`fmt::Error`] is `ENOMEM`; this is the one place that says so.
pub(crate) struct ShowError(Error);

impl From<fmt::Error> for ShowError {
    fn from(_: fmt::Error) -> Self {
        Self(ENOMEM)
    }
}

impl From<Error> for ShowError {
    fn from(e: Error) -> Self {
        Self(e)
    }
}

impl From<kernel::alloc::AllocError> for ShowError {
    fn from(_: kernel::alloc::AllocError) -> Self {
        Self(ENOMEM)
    }
}

/// What [`Node::show`] returns: `?` takes both formatting and kernel errors.
pub(crate) type Shown = core::result::Result<(), ShowError>;

/// What a debugfs file shows when read and accepts when written.
///
/// A file is readable (by root) when its type implements `show`, writable when it implements `store`.
#[vtable]
pub(crate) trait Node: Sync + Sized {
    /// Writes the file's whole text to `out`.
    fn show(&self, _out: &mut Text) -> Shown {
        kernel::build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Handles one write of `input` (at most [`MAX_WRITE`] bytes, at offset 0) by the task `writer`.
    fn store(&self, _input: &[u8], _writer: &Current<'_>) -> Result {
        kernel::build_error!(VTABLE_DEFAULT_ERROR)
    }
}

/// C's `struct module`, as far as this file needs it: an address, never read from Rust.
#[repr(C)]
struct ModuleSymbol {
    _opaque: [u8; 0],
}

extern "C" {
    /// This module (C's `THIS_MODULE`), defined in the `.mod.c` that modpost generates for it.
    static __this_module: ModuleSymbol;
}

/// The operations of every file whose node type is `T`.
struct Ops<T>(PhantomData<T>);

impl<T: Node> Ops<T> {
    /// One constant per node type, promoted to a `'static` in the module's read-only data: it lives
    /// until the module's memory is freed, after its exit and a grace period (`free_module()`).
    ///
    /// It must not be freed with a file. On 7.x the first open of a file reads its operations in
    /// `__debugfs_file_get()` (fs/debugfs/file.c, the `methods` computation) *before* taking the
    /// active reference that `debugfs_remove()` waits for, so an open that looked the file up before
    /// `rmmod` removed it reads them after; per-file operations freed at removal were read freed
    /// (KFENCE, `make stress KVER=7.3`). The reference an open file holds on `owner` then keeps the
    /// module loaded.
    const FOPS: bindings::file_operations = bindings::file_operations {
        // Only the address, which the module loader resolves; nothing is read. (A constant that
        // points to a static needs rustc 1.83; a module builds with its kernel's rustc, 1.96 here.)
        owner: (&raw const __this_module)
            .cast::<bindings::module>()
            .cast_mut(),
        open: Some(open::<T>),
        read: if T::HAS_SHOW {
            Some(bindings::seq_read)
        } else {
            None
        },
        write: if T::HAS_STORE { Some(write::<T>) } else { None },
        llseek: Some(bindings::seq_lseek),
        release: Some(bindings::single_release),
        // SAFETY: Every other field is an integer, a flag word or an `Option` of a function pointer,
        // for each of which all zeroes is valid (none, or no flag).
        ..unsafe { MaybeUninit::zeroed().assume_init() }
    };

    /// The operations, `'static`.
    const fn get() -> &'static bindings::file_operations {
        &Self::FOPS
    }
}

/// A debugfs file backed by a [`Node`] it owns.
///
/// # Invariants
///
/// `dentry` is a file created by `debugfs_create_file` with `Ops::<T>::FOPS` as its operations and
/// `&*_data` as its `i_private`; it stays until `self` is dropped. `_data` does not move.
pub(crate) struct File<T: Node> {
    dentry: *mut bindings::dentry,
    /// Kept for the file's life: debugfs points into it.
    _data: KBox<T>,
    /// Removed after the file.
    _dir: Dir,
}

// SAFETY: A dentry pointer may be used and removed from any thread, and `T: Sync` (`Node`).
unsafe impl<T: Node + Send> Send for File<T> {}
// SAFETY: `File` offers no method that mutates through `&self`; `T: Sync`.
unsafe impl<T: Node> Sync for File<T> {}

impl<T: Node> File<T> {
    /// Creates the file `name` in `dir`, showing and storing through `data`.
    ///
    /// The file's operations hold a reference on this module while the file is open, so the module
    /// cannot be unloaded under a reader.
    pub(crate) fn new(dir: &Dir, name: &CStr, data: T) -> Result<Self> {
        let mode = (if T::HAS_SHOW { 0o400 } else { 0 }) | (if T::HAS_STORE { 0o200 } else { 0 });
        let data = KBox::new(data, GFP_KERNEL)?;
        // SAFETY: `name` is NUL-terminated, `dir.dentry()` is a live directory, the operations are
        // `'static`, and `data` lives at a fixed address until after the file is removed in `drop`.
        let dentry = check_ptr(unsafe {
            bindings::rrp_debugfs_create_file(
                name.as_char_ptr(),
                mode,
                dir.dentry(),
                core::ptr::from_ref(&*data).cast_mut().cast::<c_void>(),
                Ops::<T>::get(),
            )
        })?;
        // INVARIANT: the file was created with `Ops::<T>::FOPS` and `&*data`.
        Ok(Self {
            dentry,
            _data: data,
            _dir: dir.clone(),
        })
    }
}

impl<T: Node> Drop for File<T> {
    fn drop(&mut self) {
        // SAFETY: By the type invariant `dentry` is ours. `debugfs_remove` waits for every operation in
        // progress on it and lets no new one start, so no callback touches `data` after this; the
        // operations are `'static` (see `Ops::FOPS`), and the module reference an open file holds
        // means the module cannot be torn down while one is open.
        unsafe { bindings::debugfs_remove(self.dentry) };
    }
}

/// `open`: sets up `seq_file` to call [`show`] with the node as its private data.
///
/// # Safety
///
/// Called by the VFS with a valid `inode` and `file` of a file made by [`File::new`] with type `T`.
unsafe extern "C" fn open<T: Node>(
    inode: *mut bindings::inode,
    file: *mut bindings::file,
) -> c_int {
    // SAFETY: The VFS passes valid pointers; `i_private` is the `T` set by `File::new`.
    unsafe { bindings::single_open(file, Some(show::<T>), (*inode).i_private) }
}

/// `seq_file` show callback: renders the node's text.
///
/// # Safety
///
/// `m` is the `seq_file` set up by [`open`] for a `T`.
unsafe extern "C" fn show<T: Node>(m: *mut bindings::seq_file, _v: *mut c_void) -> c_int {
    // SAFETY: `private` is the `T` passed to `single_open`; the file's invariant keeps it alive while
    // an operation is in progress.
    let node = unsafe { &*(*m).private.cast::<T>() };
    if !T::HAS_SHOW {
        // A write-only file opened for reading: nothing to show (and no `read` operation anyway).
        return 0;
    }
    // Every read looks once at whether the module's clock still holds (logged once if not).
    super::time::stale();
    let mut text = Text::new();
    match node.show(&mut text) {
        // SAFETY: `m` is valid and `text.0` holds `len` initialised bytes.
        Ok(()) => unsafe {
            bindings::seq_write(m, text.0.as_ptr().cast(), text.0.len());
            0
        },
        Err(ShowError(e)) => e.to_errno(),
    }
}

/// The user-space address `addr` as `UserSlice` takes it (a struct on 7.x, `usize` on 6.12).
fn user_ptr(addr: usize) -> UserPtr {
    #[cfg(rrp_user_ptr_struct)]
    return UserPtr::from_addr(addr);
    #[cfg(not(rrp_user_ptr_struct))]
    return addr;
}

/// `write`: copies at most [`MAX_WRITE`] bytes from user space and hands them to the node.
///
/// # Safety
///
/// Called by the VFS with a valid `file` opened through [`open`] for a `T` and a valid `ppos`.
unsafe extern "C" fn write<T: Node>(
    file: *mut bindings::file,
    buf: *const c_char,
    count: usize,
    ppos: *mut bindings::loff_t,
) -> isize {
    from_result(|| {
        // SAFETY: The VFS passes a valid `ppos`.
        if !T::HAS_STORE || unsafe { *ppos } != 0 || count > MAX_WRITE {
            return Err(EINVAL);
        }
        let mut input = [0u8; MAX_WRITE];
        UserSlice::new(user_ptr(buf as usize), count)
            .reader()
            .read_slice(&mut input[..count])?;
        // SAFETY: `open` made `private_data` a `seq_file` whose `private` is the file's `T`, alive while
        // this operation is in progress.
        let node = unsafe {
            &*(*(*file).private_data.cast::<bindings::seq_file>())
                .private
                .cast::<T>()
        };
        // SAFETY: A `write` runs in the writing task's process context, which may change its own
        // notifier list; `current!()` borrows the task for this statement only.
        node.store(&input[..count], &unsafe {
            Current::new(kernel::current!())
        })?;
        Ok(count as isize)
    })
}
