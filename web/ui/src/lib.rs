//! Crest's web UI. The server renders each page (`ssr`), the browser hydrates it (`hydrate`)
//! and loads the figures from the HTTP API with the signed-in token. Pages: overview,
//! dashboards, explore, traces, milestones and capacity, alerts.

pub mod api;
pub mod chart;
mod pages;
pub mod service_map;

use leptos::prelude::*;
use leptos_meta::{Link, Title, provide_meta_context};
use leptos_router::components::{A, Route, Router, Routes};
use leptos_router::path;

/// The whole application.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    let dark = RwSignal::new(false);
    let signed_in = RwSignal::new(true);
    provide_context(SignIn(signed_in));
    Effect::new(move |_| {
        dark.set(api::local_get("crest-theme").as_deref() == Some("dark"));
    });
    view! {
        <Title text="Crest"/>
        <Link rel="stylesheet" href="/ui/crest.css"/>
        <Router>
            <div class="app" class:dark=move || dark.get()>
                <nav class="top">
                    <span class="brand">"Crest"</span>
                    <A href="/">"Overview"</A>
                    <A href="/dashboards">"Dashboards"</A>
                    <A href="/explore">"Explore"</A>
                    <A href="/traces">"Traces"</A>
                    <A href="/milestones">"Milestones & capacity"</A>
                    <A href="/alerts">"Alerts"</A>
                    <span class="spacer"></span>
                    <button id="theme" on:click=move |_| {
                        let d = !dark.get();
                        dark.set(d);
                        api::local_set("crest-theme", if d { "dark" } else { "light" });
                    }>{move || if dark.get() { "Light" } else { "Dark" }}</button>
                </nav>
                <SignInBox/>
                <main>
                    <Routes fallback=|| view! { <p>"No such page."</p> }>
                        <Route path=path!("/") view=pages::Overview/>
                        <Route path=path!("/dashboards") view=pages::DashboardList/>
                        <Route path=path!("/d/:uid") view=pages::DashboardPage/>
                        <Route path=path!("/explore") view=pages::Explore/>
                        <Route path=path!("/traces") view=pages::Traces/>
                        <Route path=path!("/milestones") view=pages::Milestones/>
                        <Route path=path!("/alerts") view=pages::Alerts/>
                    </Routes>
                </main>
            </div>
        </Router>
    }
}

/// Whether the API accepted the stored token (false after a 401).
#[derive(Clone, Copy)]
pub struct SignIn(pub RwSignal<bool>);

/// Marks the session signed out when a call answered 401.
pub fn note_error(e: &api::ApiError) {
    if e.status == 401
        && let Some(SignIn(s)) = use_context::<SignIn>()
    {
        s.set(false);
    }
}

/// Asks for a token when the server refused the current one (or none).
#[component]
fn SignInBox() -> impl IntoView {
    let SignIn(signed_in) = expect_context::<SignIn>();
    let token = RwSignal::new(String::new());
    view! {
        <Show when=move || !signed_in.get()>
            <form class="signin" on:submit=move |ev| {
                ev.prevent_default();
                api::set_token(Some(token.get_untracked().trim()));
                signed_in.set(true);
                #[cfg(feature = "hydrate")]
                if let Some(w) = web_sys::window() {
                    let _ = w.location().reload();
                }
            }>
                <span>"This server needs a token: "</span>
                <input id="token" type="password" placeholder="bearer token"
                    on:input=move |ev| token.set(event_target_value(&ev)) prop:value=move || token.get()/>
                <button type="submit">"Sign in"</button>
            </form>
        </Show>
    }
}
