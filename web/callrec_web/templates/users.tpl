% rebase('layout.tpl', title=_('Users'), section='users')
<h1>{{_('Users')}}</h1>
% include('errors.tpl')
<div class="table-wrap" role="region" aria-labelledby="users-caption" tabindex="0">
<table>
  <caption id="users-caption">{{_('Accounts')}}</caption>
  <thead><tr><th scope="col">{{_('Username')}}</th><th scope="col">{{_('Roles')}}</th><th scope="col">{{_('Created')}}</th><th scope="col"><span class="visually-hidden">{{_('Action')}}</span></th></tr></thead>
  <tbody>
% for account in accounts:
    <tr>
      <td>{{account.name}}</td>
      <td>{{', '.join(t('role_' + r) for r in sorted(account.roles))}}</td>
      <td>{{local_time(account.created_at) or '—'}}</td>
      <td>
% if account.name != who.name and may_grant(account.roles):
        <form method="post" action="/users">
          <input type="hidden" name="csrf_token" value="{{csrf}}">
          <input type="hidden" name="action" value="delete">
          <input type="hidden" name="username" value="{{account.name}}">
          <button type="submit" class="danger" aria-label="{{_('Delete account {name}', name=account.name)}}">{{_('Delete')}}</button>
        </form>
% end
      </td>
    </tr>
% end
  </tbody>
</table>
</div>
<section aria-labelledby="add-h">
  <h2 id="add-h">{{_('Add an account')}}</h2>
  <form method="post" action="/users" class="stack">
    <input type="hidden" name="csrf_token" value="{{csrf}}">
    <input type="hidden" name="action" value="add">
    <label for="username">{{_('Username')}}</label>
    <input id="username" name="username" required value="{{username}}" autocomplete="off" autocapitalize="none" spellcheck="false" maxlength="32" pattern="[a-z][a-z0-9._\-]{1,31}" aria-describedby="username-help">
    <p id="username-help" class="help">{{_('2 to 32 characters: lowercase letters, digits, dot, dash, underscore; a letter first.')}}</p>
    <fieldset>
      <legend>{{_('Roles')}}</legend>
% for role in grantable:
      <label class="check"><input type="checkbox" name="roles" value="{{role}}"{{!' checked' if role in chosen else ''}}> {{t('role_' + role)}}</label>
% end
    </fieldset>
    <label for="password">{{_('Password')}}</label>
    <input id="password" name="password" type="password" required minlength="10" maxlength="128" autocomplete="new-password" aria-describedby="password-help">
    <p id="password-help" class="help">{{_('10 to 128 characters. Give it to the person by a safe channel.')}}</p>
    <label for="confirm">{{_('Password again')}}</label>
    <input id="confirm" name="confirm" type="password" required minlength="10" maxlength="128" autocomplete="new-password">
    <button type="submit">{{_('Add account')}}</button>
  </form>
</section>
<section aria-labelledby="roles-h">
  <h2 id="roles-h">{{_('What the roles may do')}}</h2>
  <dl class="meta">
    <dt>{{t('role_admin')}}</dt><dd>{{_('Everything: recordings (list, listen, download, erase), requests about a person, the line status and the self-test, accounts and API tokens, the access log and the record of processing.')}}</dd>
    <dt>{{t('role_supervisor')}}</dt><dd>{{_('List, listen to and download recordings; see the line status. No erasure, no access log.')}}</dd>
    <dt>{{t('role_privacy_officer')}}</dt><dd>{{_('Handle requests about a person (access, copy, rectification, erasure, restriction, objection); list, listen to, download and erase recordings (with a reason, kept in the access log); read the access log and the record of processing; see the line status.')}}</dd>
    <dt>{{t('role_technician')}}</dt><dd>{{_('See the line status and run the self-test; manage accounts, only with rights they hold themselves. A technician never hears a call, unless also given a role that listens (supervisor or privacy officer).')}}</dd>
  </dl>
</section>
