//! One stream entry, as a handler gets it.

use std::fmt;

/// One entry of the stream: its id, its fields, and how many times it has
/// been delivered (to any consumer of the group, this time included).
///
/// # Examples
///
/// ```no_run
/// use taskpool::redis::Entry;
///
/// async fn handle(entry: Entry) -> Result<(), String> {
///     let user = entry.field_str("user").ok_or("no user field")?;
///     let blob = entry.field("blob").unwrap_or_default();
///     println!("{}: {user}, {} bytes, try {}", entry.id(), blob.len(), entry.delivery_count());
///     Ok(())
/// }
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Entry {
    pub(super) id: String,
    pub(super) fields: Vec<(String, Vec<u8>)>,
    pub(super) deliveries: u64,
}

impl Entry {
    /// The entry's id in the stream (`1700000000000-0`): unique, and the
    /// same on every delivery, so the idempotency key for its handler.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn handler(entry: taskpool::redis::Entry) -> Result<(), String> {
    /// let already = format!("processed:{}", entry.id()); // an idempotency key
    /// # drop(already);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// How many times the entry has been delivered, this time included.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn handler(entry: taskpool::redis::Entry) -> Result<(), String> {
    /// if entry.delivery_count() > 1 {
    ///     eprintln!("{} is a retry", entry.id());
    /// }
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn delivery_count(&self) -> u64 {
        self.deliveries
    }

    /// The value of field `name`, as bytes.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn handler(entry: taskpool::redis::Entry) -> Result<(), String> {
    /// let image: &[u8] = entry.field("image").ok_or("no image")?;
    /// # drop(image);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn field(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.as_slice())
    }

    /// The value of field `name`, if it is UTF-8.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn handler(entry: taskpool::redis::Entry) -> Result<(), String> {
    /// let to = entry.field_str("to").ok_or("no recipient")?;
    /// # drop(to);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn field_str(&self, name: &str) -> Option<&str> {
        self.field(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Every field, in no particular order.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn handler(entry: taskpool::redis::Entry) -> Result<(), String> {
    /// for (name, value) in entry.fields() {
    ///     println!("{name}: {} bytes", value.len());
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn fields(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.fields.iter().map(|(f, v)| (f.as_str(), v.as_slice()))
    }

    /// The bytes of its field names and values.
    pub(super) fn size(&self) -> usize {
        self.fields.iter().map(|(f, v)| f.len() + v.len()).sum()
    }
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("id", &self.id)
            .field(
                "fields",
                &self.fields.iter().map(|(f, _)| f).collect::<Vec<_>>(),
            )
            .field("deliveries", &self.deliveries)
            .finish()
    }
}
