//! Template rendering (in progress).
pub struct Rendered;
pub struct RenderedObject;
pub struct RenderError;
pub struct RenderParams;
pub enum Scope { Version }
