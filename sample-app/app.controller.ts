import { Body, Controller, Get, Header, Post, Redirect } from '@nestjs/common';
import { Session, type SessionInterface } from '../lib/index.js';

const escape = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escape(title)}</title>
<style>body{font:16px system-ui;margin:2rem auto;max-width:40rem}.flash{background:#e7f7e7;padding:.5rem 1rem}</style></head>
<body><h1>${escape(title)}</h1>${body}</body></html>`;
}

@Controller()
export class AppController {
  @Get()
  @Header('Content-Type', 'text/html; charset=utf-8')
  home(@Session() session: SessionInterface): string {
    const visits = session.increment('visits');
    const user = session.get('user.name') as string | undefined;
    const status = session.getFlash<string>('status');
    return page(
      'MonkeysLegion Session sample',
      `${status ? `<p class="flash" id="flash">${escape(status)}</p>` : ''}
<p id="visits">Visits in this session: ${visits}</p>
${
  user
    ? `<p id="who">Signed in as ${escape(user)}</p>
<form method="post" action="/logout"><button>Sign out</button></form>`
    : `<form method="post" action="/login"><label>Name <input name="name" required maxlength="40"></label> <button>Sign in</button></form>`
}`,
    );
  }

  @Post('login')
  @Redirect('/', 303)
  login(@Session() session: SessionInterface, @Body() body: { name?: string }): void {
    const name = String(body?.name ?? '').trim().slice(0, 40) || 'guest';
    session.regenerate(); // a new ID on sign-in defeats session fixation
    session.setUserId(name.toLowerCase());
    session.set('user.name', name);
    session.flash('status', `Welcome, ${name}!`);
  }

  @Post('logout')
  @Redirect('/', 303)
  logout(@Session() session: SessionInterface): void {
    session.invalidate();
    session.flash('status', 'Signed out.');
  }
}
