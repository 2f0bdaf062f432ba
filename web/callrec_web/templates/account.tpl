% rebase('layout.tpl', title=_('Account'), section='account')
<h1>{{_('Your account')}}</h1>
<p>{{_('Logged in as')}} <strong>{{who.name}}</strong>. {{_('Roles:')}} {{', '.join(t('role_' + r) for r in sorted(who.user.roles))}}.</p>
% include('errors.tpl')
<section aria-labelledby="pw-h">
  <h2 id="pw-h">{{_('Change password')}}</h2>
  <form method="post" action="/account" class="stack">
    <input type="hidden" name="csrf_token" value="{{csrf}}">
    <input type="hidden" name="action" value="password">
    <input type="text" name="username" value="{{who.name}}" autocomplete="username" hidden>
    <label for="current">{{_('Current password')}}</label>
    <input id="current" name="current" type="password" required maxlength="128" autocomplete="current-password">
    <label for="password">{{_('New password')}}</label>
    <input id="password" name="password" type="password" required minlength="10" maxlength="128" autocomplete="new-password" aria-describedby="password-help">
    <p id="password-help" class="help">{{_('10 to 128 characters.')}}</p>
    <label for="confirm">{{_('New password again')}}</label>
    <input id="confirm" name="confirm" type="password" required minlength="10" maxlength="128" autocomplete="new-password">
    <button type="submit">{{_('Change password')}}</button>
  </form>
</section>
% if can('tokens.own'):
<section aria-labelledby="tok-h">
  <h2 id="tok-h">{{_('API tokens')}}</h2>
  <p>{{!_('A token lets a program use the JSON API (<code>/api/v1/</code>) with your rights: send it as <code>Authorization: Bearer &lt;token&gt;</code>.')}}</p>
% if new_token:
  <div class="new-token" role="status">
    <p>{{_('New token “{label}”. Copy it now: it is shown only once.', label=token_label)}}</p>
    <p><code class="token">{{new_token}}</code></p>
  </div>
% end
% if who.user.tokens:
  <table>
    <caption>{{_('Your tokens')}}</caption>
    <thead><tr><th scope="col">{{_('Label')}}</th><th scope="col">{{_('Created')}}</th><th scope="col"><span class="visually-hidden">{{_('Action')}}</span></th></tr></thead>
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
            <button type="submit" class="danger" aria-label="{{_('Revoke token {label}', label=tok.label)}}">{{_('Revoke')}}</button>
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
    <label for="label">{{_('Label for a new token')}}</label>
    <input id="label" name="label" required maxlength="64" value="{{token_label if not new_token else ''}}">
    <button type="submit">{{_('Create token')}}</button>
  </form>
</section>
% end
