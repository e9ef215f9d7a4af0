//! The device the compositor runs on: its own headless one, or the window's.

use std::sync::{Arc, Mutex};

use super::GpuError;

/// A wgpu device and queue, with what the compositor needs to know about them.
#[derive(Clone)]
pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub adapter_name: String,
    /// Timestamp queries are enabled, so GPU time can be measured.
    pub timestamps: bool,
    /// The first validation or out-of-memory error the device reported, waiting to be returned.
    errors: Arc<Mutex<Option<String>>>,
}

impl GpuContext {
    /// A device of its own, for the command line and tests: a discrete GPU before an integrated one,
    /// before a virtual or software one (lavapipe).
    pub fn headless() -> Result<Self, GpuError> {
        Self::headless_with(true)
    }

    /// As [`Self::headless`]; without `allow_software` a CPU rasteriser (lavapipe, llvmpipe, WARP) is
    /// refused with [`GpuError::SoftwareOnly`]: it is slower than the CPU compositor and takes the same
    /// cores as inference.
    pub fn headless_with(allow_software: bool) -> Result<Self, GpuError> {
        let backends = wgpu::Backends::VULKAN | wgpu::Backends::METAL | wgpu::Backends::DX12;
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
            backends,
            ..wgpu::InstanceDescriptor::new_without_display_handle()
        });
        let adapters = pollster::block_on(instance.enumerate_adapters(backends));
        let rank = |adapter: &wgpu::Adapter| match adapter.get_info().device_type {
            wgpu::DeviceType::DiscreteGpu => 0,
            wgpu::DeviceType::IntegratedGpu => 1,
            wgpu::DeviceType::VirtualGpu => 2,
            wgpu::DeviceType::Other => 3,
            wgpu::DeviceType::Cpu => 4,
        };
        let adapter = adapters.into_iter().min_by_key(rank).ok_or(GpuError::NoAdapter)?;
        let info = adapter.get_info();
        if !allow_software && info.device_type == wgpu::DeviceType::Cpu {
            return Err(GpuError::SoftwareOnly { adapter: info.name });
        }
        let timestamps = adapter.features().contains(wgpu::Features::TIMESTAMP_QUERY);
        let descriptor = wgpu::DeviceDescriptor {
            label: Some("mattecam compositor"),
            required_features: if timestamps { wgpu::Features::TIMESTAMP_QUERY } else { wgpu::Features::empty() },
            required_limits: adapter.limits(),
            ..Default::default()
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&descriptor))
            .map_err(|err| GpuError::Device { adapter: info.name.clone(), reason: err.to_string() })?;
        Ok(Self::with_device(device, queue, &info, timestamps))
    }

    /// Shares a device made elsewhere (the window's).
    pub fn with_device(device: wgpu::Device, queue: wgpu::Queue, info: &wgpu::AdapterInfo, timestamps: bool) -> Self {
        let errors: Arc<Mutex<Option<String>>> = Arc::default();
        let sink = errors.clone();
        // wgpu's default handler panics; keep the first error and return it from the frame that caused it.
        device.on_uncaptured_error(Arc::new(move |error: wgpu::Error| {
            let mut first = sink.lock().expect("gpu error lock");
            first.get_or_insert_with(|| error.to_string());
        }));
        let adapter_name = format!("{} ({:?}, {:?})", info.name, info.device_type, info.backend);
        Self { device, queue, adapter_name, timestamps, errors }
    }

    /// The device's first error since the last call, if any.
    pub fn take_error(&self) -> Result<(), GpuError> {
        match self.errors.lock().expect("gpu error lock").take() {
            Some(message) => Err(GpuError::Device { adapter: self.adapter_name.clone(), reason: message }),
            None => Ok(()),
        }
    }
}
