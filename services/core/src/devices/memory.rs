//! SKELETON.
pub struct MemoryDeviceStore;
