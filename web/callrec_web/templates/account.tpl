% rebase('layout.tpl', title='Account', section='account')
<h1>Your account</h1>
<p>Logged in as <strong>{{who.name}}</strong>. Roles: {{', '.join(t('role_' + r) for r in sorted(who.user.roles))}}.</p>
% include('errors.tpl')
<section aria-labelledby="pw-h">
  <h2 id="pw-h">Change password</h2>
  <form method="post" action="/account" class="stack">
    <input type="hidden" name="csrf_token" value="{{csrf}}">
    <input type="hidden" name="action" value="password">
    <input type="text" name="username" value="{{who.name}}" autocomplete="username" hidden>
    <label for="current">Current password</label>
    <input id="current" name="current" type="password" required maxlength="128" autocomplete="current-password">
    <label for="password">New password</label>
    <input id="password" name="password" type="password" required minlength="10" maxlength="128" autocomplete="new-password" aria-describedby="password-help">
    <p id="password-help" class="help">10 to 128 characters.</p>
    <label for="confirm">New password again</label>
    <input id="confirm" name="confirm" type="password" required minlength="10" maxlength="128" autocomplete="new-password">
    <button type="submit">Change password</button>
  </form>
</section>
% if can('tokens.own'):
<section aria-labelledby="tok-h">
  <h2 id="tok-h">API tokens</h2>
  <p>A token lets a program use the JSON API (<code>/api/v1/</code>) with your rights: send it as <code>Authorization: Bearer &lt;token&gt;</code>.</p>
% if new_token:
  <div class="new-token" role="status">
    <p>New token “{{token_label}}”. Copy it now: it is shown only once.</p>
    <p><code class="token">{{new_token}}</code></p>
  </div>
% end
% if who.user.tokens:
  <table>
    <caption>Your tokens</caption>
    <thead><tr><th scope="col">Label</th><th scope="col">Created</th><th scope="col"><span class="visually-hidden">Action</span></th></tr></thead>
    <tbody>
% for tok in who.user.tokens:
      <tr>
        <td>{{tok.label}}</td>
        <td>{{local_time(tok.created_at) or '—'}}</td>
        <td>
          <form method="post" action="/account">
            <input type="hidden" name="csrf_token" value="{{csrf}}">
            <input type="hidden" name="action" value="token_revoke">
            <input type="hidden" name="token_id" value="{{tok.id}}">
            <button type="submit" class="danger" aria-label="Revoke token {{tok.label}}">Revoke</button>
          </form>
        </td>
      </tr>
% end
    </tbody>
  </table>
% end
  <form method="post" action="/account" class="stack">
    <input type="hidden" name="csrf_token" value="{{csrf}}">
    <input type="hidden" name="action" value="token_create">
    <label for="label">Label for a new token</label>
    <input id="label" name="label" required maxlength="64" value="{{token_label if not new_token else ''}}">
    <button type="submit">Create token</button>
  </form>
</section>
% end
