use gobs_runtime::define_actor;

#[define_actor]
pub struct Fetcher {
    url: String,
}

#[define_actor]
impl Fetcher {
    pub async fn fetch(&self) -> String {
        self.url.clone()
    }
}

fn main() {}
