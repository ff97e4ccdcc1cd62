//! Page-aligned buffers for `O_DIRECT` reads.
//!
//! `O_DIRECT` requires the buffer address, the file offset and the length to
//! be multiples of the device's logical block size; aligning to a full page
//! satisfies every device. `Vec<u8>` guarantees no alignment, hence this
//! small owner of an aligned allocation.

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::ptr::NonNull;

use omen_format::segment::layout::PAGE_SIZE;

/// A zero-initialised, page-aligned, fixed-size byte buffer of whole pages.
pub struct AlignedPages {
    ptr: NonNull<u8>,
    pages: usize,
}

// SAFETY: `AlignedPages` uniquely owns its allocation, like a `Box<[u8]>`.
unsafe impl Send for AlignedPages {}
// SAFETY: shared access only hands out `&[u8]`, like a `Box<[u8]>`.
unsafe impl Sync for AlignedPages {}

impl AlignedPages {
    /// Allocates `pages` zeroed pages (at least one).
    pub fn new(pages: usize) -> Self {
        let pages = pages.max(1);
        let layout = Self::layout(pages);
        // SAFETY: the layout has a non-zero size (at least one page).
        let raw = unsafe { alloc_zeroed(layout) };
        let ptr = NonNull::new(raw).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
        AlignedPages { ptr, pages }
    }

    fn layout(pages: usize) -> Layout {
        Layout::from_size_align(pages * PAGE_SIZE, PAGE_SIZE).expect("page-aligned layout")
    }

    /// Number of pages.
    pub fn pages(&self) -> usize {
        self.pages
    }

    /// Page `i` (panics if out of range). Borrows that page only, so the
    /// kernel may be filling other pages of the buffer meanwhile.
    pub fn page(&self, i: usize) -> &[u8; PAGE_SIZE] {
        assert!(i < self.pages, "page {i} of {}", self.pages);
        let page = self
            .ptr
            .as_ptr()
            .wrapping_add(i * PAGE_SIZE)
            .cast::<[u8; PAGE_SIZE]>();
        // SAFETY: page `i` lies within the allocation (checked above), is
        // initialised (zeroed at allocation, then only written by reads that
        // completed), and is borrowed immutably for as long as `self` is.
        unsafe { &*page }
    }

    /// Raw pointer to page `i`, for the kernel to fill (panics if out of
    /// range). Creates no reference, so no other page's borrow is disturbed.
    pub fn page_ptr(&mut self, i: usize) -> *mut u8 {
        assert!(i < self.pages, "page {i} of {}", self.pages);
        self.ptr.as_ptr().wrapping_add(i * PAGE_SIZE)
    }

    /// The whole buffer.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr` points to `pages * PAGE_SIZE` initialised (zeroed at
        // allocation) bytes owned by `self`, borrowed immutably here.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.pages * PAGE_SIZE) }
    }

    /// The whole buffer, mutably.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`, and `&mut self` guarantees exclusivity.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.pages * PAGE_SIZE) }
    }
}

impl Drop for AlignedPages {
    fn drop(&mut self) {
        // SAFETY: `ptr` was allocated in `new` with exactly this layout and
        // is freed only here.
        unsafe { dealloc(self.ptr.as_ptr(), Self::layout(self.pages)) };
    }
}

impl std::fmt::Debug for AlignedPages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AlignedPages({} pages)", self.pages)
    }
}
