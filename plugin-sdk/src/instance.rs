//! The plugin value of this instance: made once by the plugin's `new` from
//! the configuration `init` gave, and used for every batch until the host
//! discards the instance.

use std::any::Any;
use std::cell::RefCell;
use std::rc::Rc;

use crate::PluginError;
use crate::config::Config;

thread_local! {
    static INSTANCE: RefCell<Option<Rc<dyn Any>>> = const { RefCell::new(None) };
}

/// Take `config` and make the plugin value with `new`.
pub(crate) fn init<T: 'static>(
    config: Config,
    new: impl FnOnce(&Config) -> Result<T, PluginError>,
) -> Result<(), PluginError> {
    crate::config::set(config.clone());
    let value = new(&config)?;
    INSTANCE.with_borrow_mut(|i| *i = Some(Rc::new(value)));
    Ok(())
}

/// The plugin value (rules and services); made from the current configuration if `init` has
/// not run (it always has, on the host).
#[allow(dead_code)] // not used by adapters
pub(crate) fn get<T: 'static>(
    new: impl FnOnce(&Config) -> Result<T, PluginError>,
) -> Result<Rc<T>, PluginError> {
    if let Some(v) = INSTANCE.with_borrow(|i| i.clone())
        && let Ok(v) = v.downcast::<T>()
    {
        return Ok(v);
    }
    let value = Rc::new(new(&crate::config::current())?);
    INSTANCE.with_borrow_mut(|i| *i = Some(value.clone()));
    Ok(value)
}
