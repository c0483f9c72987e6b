import { Body, Controller, Get, Header, Post, Redirect, UseGuards } from '@nestjs/common';
import { CsrfGuard, Session, SessionManager, type SessionInterface } from '../lib/index.js';
import { escape, form, page } from './html.js';

/**
 * Every feature the way an application would use it. All POST routes go through CsrfGuard:
 * forms send `_token`, the fetch() call sends `X-CSRF-Token`.
 */
@Controller()
@UseGuards(CsrfGuard)
export class AppController {
  constructor(private readonly sessions: SessionManager) {}

  @Get()
  @Header('Content-Type', 'text/html; charset=utf-8')
  home(@Session() session: SessionInterface): string {
    const visits = session.increment('visits');
    const name = session.get('user.name') as string | undefined;
    const token = session.csrfToken();
    const body = name
      ? `<p id="who">Signed in as <b>${escape(name)}</b>.</p>${form('/logout', token, '<button id="logout">Sign out</button>')}`
      : form('/login', token, '<label>Name <input name="name" id="name" required maxlength="40"></label> <button id="login">Sign in</button>');
    return page(
      'MonkeysLegion Session sample',
      `<p id="visits">Visits in this session: ${visits}</p>${body}
<p><button id="ping" type="button">Call the JSON API</button> <span id="api"></span></p>
<script>
document.getElementById('ping').onclick = async () => {
  const res = await fetch('/api/counter', { method: 'POST', headers: { 'X-CSRF-Token': ${JSON.stringify(token)} } });
  document.getElementById('api').textContent = res.ok ? 'API calls: ' + (await res.json()).apiCalls : 'refused: ' + res.status;
};
</script>`,
      session.getFlash<string>('status'),
    );
  }

  @Post('login')
  @Redirect('/', 303)
  login(@Session() session: SessionInterface, @Body() body: { name?: unknown }): void {
    const name = (typeof body?.name === 'string' ? body.name.trim().slice(0, 40) : '') || 'guest';
    session.regenerate(); // a new ID on sign-in: a fixated pre-login ID is worthless
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

  @Get('profile')
  @Header('Content-Type', 'text/html; charset=utf-8')
  profile(@Session() session: SessionInterface): string {
    const name = session.get('user.name') as string | undefined;
    if (!name) return page('Profile', '<p id="who">Not signed in. <a href="/">Sign in</a></p>');
    const bio = (session.get('user.bio') as string | undefined) ?? '';
    return page(
      'Profile',
      `<p id="who">Signed in as <b>${escape(name)}</b>.</p>
${form('/profile', session.csrfToken(), `<label>Bio <input name="bio" id="bio" value="${escape(bio)}" maxlength="200"></label> <button id="save">Save</button>`, 'profile-form')}
<p id="bio-shown">${escape(bio)}</p>`,
      session.getFlash<string>('status'),
    );
  }

  @Post('profile')
  @Redirect('/profile', 303)
  updateProfile(@Session() session: SessionInterface, @Body() body: { bio?: unknown }): void {
    if (!session.get('user.name')) return;
    session.set('user.bio', typeof body?.bio === 'string' ? body.bio.slice(0, 200) : '');
    session.flash('status', 'Profile updated!');
  }

  @Post('api/counter')
  apiCounter(@Session() session: SessionInterface): { apiCalls: number } {
    return { apiCalls: session.increment('apiCalls') };
  }

  @Get('sessions')
  @Header('Content-Type', 'text/html; charset=utf-8')
  async list(@Session() session: SessionInterface): Promise<string> {
    const userId = session.getUserId();
    if (!userId) return page('Your sessions', '<p id="who">Not signed in. <a href="/">Sign in</a></p>');
    const mine = await this.sessions.listByUser(userId);
    // Another session's raw ID is a bearer credential: the page shows only its short hash.
    const rows = mine
      .map((s) => `<tr><td><code>${escape(s.ref)}</code>${s.id === session.getId() ? ' (this one)' : ''}</td><td>${escape(s.ipAddress ?? '')}</td><td>${escape(s.userAgent ?? '')}</td><td>${escape(s.lastActivity.toISOString())}</td></tr>`)
      .join('');
    return page(
      'Your sessions',
      `<table id="sessions"><tr><th>session</th><th>IP</th><th>browser</th><th>last active</th></tr>${rows}</table>
${form('/sessions/others', session.csrfToken(), '<button id="others">Sign out everywhere else</button>')}`,
      session.getFlash<string>('status'),
    );
  }

  @Post('sessions/others')
  @Redirect('/sessions', 303)
  async signOutOthers(@Session() session: SessionInterface): Promise<void> {
    const userId = session.getUserId();
    if (!userId) return;
    const n = await this.sessions.destroyByUser(userId, { except: session.getId() });
    session.flash('status', `Signed out ${n} other session(s).`);
  }
}
