/** Tiny server-side HTML helpers: no template engine, no front-end build. */
export const escape = (s: unknown): string => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export function page(title: string, body: string, flash?: string | null): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escape(title)}</title>
<meta name="viewport" content="width=device-width,initial-scale=1">
<style>body{font:16px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:44rem;padding:0 1rem}
nav a{margin-right:1rem}.flash{background:#e7f7e7;border:1px solid #9c9;padding:.5rem 1rem}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left}</style></head>
<body><nav><a href="/">Home</a><a href="/profile">Profile</a><a href="/sessions">Sessions</a></nav>
<h1>${escape(title)}</h1>${flash ? `<p class="flash" id="flash">${escape(flash)}</p>` : ''}${body}</body></html>`;
}

/** A POST form carrying the CSRF token in the hidden `_token` field that CsrfGuard reads. */
export function form(action: string, token: string, inner: string, id?: string): string {
  return `<form method="post" action="${escape(action)}"${id ? ` id="${escape(id)}"` : ''}><input type="hidden" name="_token" value="${escape(token)}">${inner}</form>`;
}
