% rebase('layout.tpl', title=_('First start'))
<h1>{{_('First start: create the administrator')}}</h1>
<p>{{!_("This appliance has no account yet, and no default password. To prove that you are at the appliance, enter the setup code shown on its display (or in the file <code>setup-code</code> in its runtime folder). Then choose the administrator's name and password.")}}</p>
<p>{{_('The appliance records telephone calls after an announcement. Keep the administrator password safe: it gives access to the recordings.')}}</p>
% include('errors.tpl')
<form method="post" action="/setup" class="stack">
  <input type="hidden" name="csrf_token" value="{{csrf}}">
  <label for="code">{{_('Setup code')}}</label>
  <input id="code" name="code" required autocomplete="one-time-code" autocapitalize="characters" spellcheck="false" maxlength="64">
  <label for="username">{{_('Administrator username')}}</label>
  <input id="username" name="username" required value="{{username}}" autocomplete="username" autocapitalize="none" spellcheck="false" maxlength="32" pattern="[a-z][a-z0-9._\-]{1,31}" aria-describedby="username-help">
  <p id="username-help" class="help">{{_('2 to 32 characters: lowercase letters, digits, dot, dash, underscore; a letter first.')}}</p>
  <label for="password">{{_('Password')}}</label>
  <input id="password" name="password" type="password" required minlength="10" maxlength="128" autocomplete="new-password" aria-describedby="password-help">
  <p id="password-help" class="help">{{_('10 to 128 characters. A sentence of several words is easy to remember and hard to guess.')}}</p>
  <label for="confirm">{{_('Password again')}}</label>
  <input id="confirm" name="confirm" type="password" required minlength="10" maxlength="128" autocomplete="new-password">
  <button type="submit">{{_('Create the administrator')}}</button>
</form>
