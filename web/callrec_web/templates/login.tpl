% rebase('layout.tpl', title=_('Log in'))
<h1>{{_('Log in')}}</h1>
% include('errors.tpl')
<form method="post" action="/login{{'?next=' + next if next else ''}}" class="stack">
  <input type="hidden" name="csrf_token" value="{{csrf}}">
  <label for="username">{{_('Username')}}</label>
  <input id="username" name="username" required value="{{username}}" autocomplete="username" autocapitalize="none" spellcheck="false" maxlength="32">
  <label for="password">{{_('Password')}}</label>
  <input id="password" name="password" type="password" required maxlength="128" autocomplete="current-password">
  <button type="submit">{{_('Log in')}}</button>
</form>
