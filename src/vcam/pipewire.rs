//! The PipeWire camera: a `Video/Source` node named "mattecam" that drives itself at the camera's rate.
//! The consumer picks the format (YUY2, NV12, I420, RGB, BGRx) and may ask for another size (the picture
//! is scaled). The number of apps is the number of links from the node. While the stream is not
//! streaming the camera is idle; when the daemon goes away, the node is made again once it is back.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fast_image_resize::Resizer;
use pipewire as pw;
use pw::spa;
use pw::spa::pod::{ChoiceValue, Object, Pod, Property, Value};
use pw::spa::utils::{Choice, ChoiceEnum, ChoiceFlags, Fraction, Id, Rectangle, SpaTypes};

use super::convert::{PixelFormat, convert};
use super::{CameraShared, CameraState, Feed};

/// How long to wait before connecting again to a daemon that went away.
const RECONNECT: Duration = Duration::from_secs(1);
const NODE_NAME: &str = "mattecam";
/// The longest the loop sleeps in PipeWire's poll before it looks for a stop.
const IDLE_WAIT: Duration = Duration::from_millis(20);

/// The formats offered, the first preferred.
const FORMATS: [(spa::param::video::VideoFormat, PixelFormat); 5] = [
    (spa::param::video::VideoFormat::YUY2, PixelFormat::Yuyv),
    (spa::param::video::VideoFormat::NV12, PixelFormat::Nv12),
    (spa::param::video::VideoFormat::I420, PixelFormat::I420),
    (spa::param::video::VideoFormat::RGB, PixelFormat::Rgb24),
    (spa::param::video::VideoFormat::BGRx, PixelFormat::Bgrx),
];

/// What the stream's callbacks share with the loop.
struct State {
    feed: Feed,
    /// The negotiated format and size.
    format: Option<(PixelFormat, u32, u32)>,
    scaled: Vec<u8>,
    bytes: Vec<u8>,
    resizer: Resizer,
    streaming: bool,
    /// Why the connection ended, once it has.
    lost: Option<String>,
    /// Links in the graph: id -> (output node, input node).
    links: HashMap<u32, (u32, u32)>,
}

pub fn run(feed: Feed, fps: f64, shared: &Arc<CameraShared>) {
    pw::init();
    let state = Rc::new(RefCell::new(State {
        feed,
        format: None,
        scaled: Vec::new(),
        bytes: Vec::new(),
        resizer: Resizer::new(),
        streaming: false,
        lost: None,
        links: HashMap::new(),
    }));
    shared.set_target(format!("PipeWire node {NODE_NAME}"));
    while !shared.stopping() {
        let reason = match session(&state, fps, shared) {
            Ok(()) => return,
            Err(reason) => reason,
        };
        {
            let mut st = state.borrow_mut();
            st.feed.subscription().set_idle(true);
            st.format = None;
            st.streaming = false;
            st.lost = None;
            st.links.clear();
        }
        shared.set_format(None);
        shared.set_state(CameraState::Unavailable {
            reason: format!("PipeWire: {reason}"),
            fix: Some("trying again every second; start the PipeWire daemon (systemctl --user start pipewire)".into()),
        });
        let until = Instant::now() + RECONNECT;
        while !shared.stopping() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// One connection to the daemon: `Ok` when asked to stop, `Err(why)` when it was lost or never made.
fn session(state: &Rc<RefCell<State>>, fps: f64, shared: &Arc<CameraShared>) -> Result<(), String> {
    let mainloop = pw::main_loop::MainLoopRc::new(None).map_err(|e| format!("no main loop: {e}"))?;
    let context = pw::context::ContextRc::new(&mainloop, None).map_err(|e| format!("no context: {e}"))?;
    let core = context.connect_rc(None).map_err(|_| "the daemon is not running".to_string())?;
    let s = Rc::clone(state);
    let _core_listener = core
        .add_listener_local()
        .error(move |id, _seq, res, message| {
            if id == pw::core::PW_ID_CORE {
                s.borrow_mut().lost = Some(format!("{message} ({res})"));
            }
        })
        .register();
    let registry = core.get_registry_rc().map_err(|e| format!("no registry: {e}"))?;
    let (s, r) = (Rc::clone(state), Rc::clone(state));
    let _registry_listener = registry
        .add_listener_local()
        .global(move |global| {
            if global.type_ != pw::types::ObjectType::Link {
                return;
            }
            let node = |key| global.props.and_then(|p| p.get(key)).and_then(|v| v.parse::<u32>().ok());
            if let (Some(output), Some(input)) = (node("link.output.node"), node("link.input.node")) {
                s.borrow_mut().links.insert(global.id, (output, input));
            }
        })
        .global_remove(move |id| {
            r.borrow_mut().links.remove(&id);
        })
        .register();

    let (width, height) = state.borrow().feed.size();
    let stream = pw::stream::StreamBox::new(
        &core,
        NODE_NAME,
        pw::properties::properties! {
            *pw::keys::MEDIA_TYPE => "Video",
            *pw::keys::MEDIA_CATEGORY => "Capture",
            *pw::keys::MEDIA_ROLE => "Camera",
            *pw::keys::MEDIA_CLASS => "Video/Source",
            *pw::keys::NODE_NAME => NODE_NAME,
            *pw::keys::NODE_DESCRIPTION => "mattecam virtual camera (background replaced)",
        },
    )
    .map_err(|e| format!("no stream: {e}"))?;
    let (s, p, q) = (Rc::clone(state), Rc::clone(state), Rc::clone(state));
    let (shared_p, shared_q) = (Arc::clone(shared), Arc::clone(shared));
    let _stream_listener = stream
        .add_local_listener_with_user_data(())
        .state_changed(move |_, _, _, new| {
            let mut st = s.borrow_mut();
            match new {
                pw::stream::StreamState::Streaming => st.streaming = true,
                pw::stream::StreamState::Error(reason) => {
                    st.streaming = false;
                    st.lost = Some(format!("the stream failed: {reason}"));
                }
                _ => st.streaming = false,
            }
        })
        .param_changed(move |stream, _, id, param| {
            let Some(param) = param else { return };
            if id != spa::param::ParamType::Format.as_raw() {
                return;
            }
            let mut info = spa::param::video::VideoInfoRaw::default();
            if info.parse(param).is_err() {
                return;
            }
            let Some(&(_, format)) = FORMATS.iter().find(|(f, _)| *f == info.format()) else { return };
            let size = info.size();
            let (w, h) = super::convert::even_size(size.width, size.height);
            p.borrow_mut().format = Some((format, w, h));
            shared_p.set_format(Some(format));
            let buffers = buffers_param(format, w, h);
            let mut params = [Pod::from_bytes(&buffers).expect("a serialized pod")];
            if let Err(err) = stream.update_params(&mut params) {
                tracing::warn!("virtual camera: setting the buffers: {err}");
            }
        })
        .process(move |stream, _| fill_buffer(stream, &mut q.borrow_mut(), &shared_q))
        .register()
        .map_err(|e| format!("no stream listener: {e}"))?;
    let format_pod = enum_format(width, height, fps);
    let mut params = [Pod::from_bytes(&format_pod).expect("a serialized pod")];
    stream
        .connect(
            spa::utils::Direction::Output,
            None,
            pw::stream::StreamFlags::DRIVER | pw::stream::StreamFlags::MAP_BUFFERS,
            &mut params,
        )
        .map_err(|e| format!("publishing the node: {e}"))?;
    shared.set_state(CameraState::Waiting);

    let mut clock = super::Clock::new(fps);
    let mut streaming = false;
    while !shared.stopping() {
        // Idle, the loop sleeps in PipeWire's poll until something happens (an app connecting).
        let wait = if streaming { clock.until_next() } else { IDLE_WAIT };
        mainloop.loop_().iterate(pw::loop_::Timeout::Finite(wait.min(IDLE_WAIT)));
        if let Some(reason) = state.borrow_mut().lost.take() {
            return Err(reason);
        }
        let consumers;
        (streaming, consumers) = {
            let st = state.borrow();
            let node = stream.node_id();
            let mut inputs: Vec<u32> = st.links.values().filter(|(out, _)| *out == node).map(|(_, i)| *i).collect();
            inputs.sort_unstable();
            inputs.dedup();
            (st.streaming, inputs.len() as u32)
        };
        state.borrow().feed.subscription().set_idle(!streaming);
        if !streaming {
            shared.set_state(CameraState::Waiting);
            clock.restart();
            continue;
        }
        shared.set_state(CameraState::Streaming { consumers: consumers.max(1) });
        let Some(missed) = clock.take_due() else { continue };
        shared.record_dropped(missed);
        if let Err(err) = stream.trigger_process() {
            tracing::warn!("virtual camera: {err}");
        }
    }
    let _ = stream.disconnect();
    Ok(())
}

/// Fills the next free buffer with the newest picture in the negotiated format; a consumer that holds
/// every buffer loses the frame (counted).
fn fill_buffer(stream: &pw::stream::Stream, st: &mut State, shared: &CameraShared) {
    let Some((format, w, h)) = st.format else { return };
    let State { feed, scaled, bytes, resizer, .. } = st;
    let Some(picture) = feed.picture() else { return };
    let Some(mut buffer) = stream.dequeue_buffer() else {
        shared.record_dropped(1);
        return;
    };
    let captured_at = picture.captured_at;
    if (picture.width, picture.height) == (w, h) {
        convert(picture.rgb, w, h, format, bytes);
    } else {
        super::feed::fit(resizer, picture.rgb, (picture.width, picture.height), (w, h), scaled);
        convert(scaled, w, h, format, bytes);
    }
    let datas = buffer.datas_mut();
    let Some(data) = datas.first_mut() else { return };
    let Some(memory) = data.data() else { return };
    let n = bytes.len().min(memory.len());
    memory[..n].copy_from_slice(&bytes[..n]);
    let chunk = data.chunk_mut();
    *chunk.offset_mut() = 0;
    *chunk.size_mut() = n as u32;
    *chunk.stride_mut() = format.stride(w) as i32;
    shared.record_sent(captured_at);
}

fn serialize(object: Object) -> Vec<u8> {
    spa::pod::serialize::PodSerializer::serialize(std::io::Cursor::new(Vec::new()), &Value::Object(object))
        .expect("a pod serializes")
        .0
        .into_inner()
}

/// The formats offered: each pixel format, any size (the camera's by default), the camera's rate.
fn enum_format(width: u32, height: u32, fps: f64) -> Vec<u8> {
    use spa::param::format::{FormatProperties, MediaSubtype, MediaType};
    let ids: Vec<Id> = FORMATS.iter().map(|(f, _)| Id(f.as_raw())).collect();
    let rate = Fraction { num: (fps * 1000.0).round() as u32, denom: 1000 };
    serialize(Object {
        type_: SpaTypes::ObjectParamFormat.as_raw(),
        id: spa::param::ParamType::EnumFormat.as_raw(),
        properties: vec![
            Property::new(FormatProperties::MediaType.as_raw(), Value::Id(Id(MediaType::Video.as_raw()))),
            Property::new(FormatProperties::MediaSubtype.as_raw(), Value::Id(Id(MediaSubtype::Raw.as_raw()))),
            Property::new(
                FormatProperties::VideoFormat.as_raw(),
                Value::Choice(ChoiceValue::Id(Choice(
                    ChoiceFlags::empty(),
                    ChoiceEnum::Enum { default: ids[0], alternatives: ids.clone() },
                ))),
            ),
            Property::new(
                FormatProperties::VideoSize.as_raw(),
                Value::Choice(ChoiceValue::Rectangle(Choice(
                    ChoiceFlags::empty(),
                    ChoiceEnum::Range {
                        default: Rectangle { width, height },
                        min: Rectangle { width: 2, height: 2 },
                        max: Rectangle { width: 4096, height: 4096 },
                    },
                ))),
            ),
            Property::new(FormatProperties::VideoFramerate.as_raw(), Value::Fraction(rate)),
        ],
    })
}

/// Buffers for the negotiated format: one block of a whole frame.
fn buffers_param(format: PixelFormat, width: u32, height: u32) -> Vec<u8> {
    let int = |v: u32| Value::Int(v as i32);
    serialize(Object {
        type_: SpaTypes::ObjectParamBuffers.as_raw(),
        id: spa::param::ParamType::Buffers.as_raw(),
        properties: vec![
            Property::new(
                spa::sys::SPA_PARAM_BUFFERS_buffers,
                Value::Choice(ChoiceValue::Int(Choice(
                    ChoiceFlags::empty(),
                    ChoiceEnum::Range { default: 4, min: 2, max: 16 },
                ))),
            ),
            Property::new(spa::sys::SPA_PARAM_BUFFERS_blocks, int(1)),
            Property::new(spa::sys::SPA_PARAM_BUFFERS_size, int(format.frame_bytes(width, height) as u32)),
            Property::new(spa::sys::SPA_PARAM_BUFFERS_stride, int(format.stride(width))),
        ],
    })
}
