<!DOCTYPE html>
<html lang="{{lang}}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>{{title}} · callrec</title>
<link rel="stylesheet" href="/static/style.css">
<link rel="icon" href="/static/icon.svg" type="image/svg+xml">
% for script in get('scripts', []):
<script src="/static/{{script}}" defer></script>
% end
</head>
<body>
% # Pages in another language than the UI's (the privacy notice) hand their own words in `ui`.
% ui = get('ui') or {}
<a class="skip" href="#main">{{ui.get('skip') or _('Skip to main content')}}</a>
<header class="top">
  <a class="brand" href="/">callrec</a>
% # The staff UI's language switch (?lang= sets a cookie); each language named in itself.
% ui_languages = get('ui_languages') or []
% if ui_languages:
  <nav class="langs" aria-label="{{_('Language')}}">
    <ul>
%   for code, name, href, current in ui_languages:
      <li><a href="{{href}}" hreflang="{{code}}" lang="{{code}}"{{!' aria-current="true"' if current else ''}}>{{name}}</a></li>
%   end
    </ul>
  </nav>
% end
% if who:
  <nav aria-label="{{_('Main')}}">
    <ul>
% section = get('section', '')
% links = [('recordings.list', '/recordings', 'recordings', _('Recordings')), ('status.view', '/status', 'status', _('Status')), (None, '/account', 'account', _('Account')), ('users.manage', '/users', 'users', _('Users')), ('selftest.run', '/selftest', 'selftest', _('Self-test')), ('settings.manage', '/settings', 'settings', _('Settings')), ('subjects.manage', '/subjects', 'subjects', _('People')), ('audit.view', '/audit', 'audit', _('Access log'))]
% for perm, href, name, label in links:
%   if perm is None or can(perm):
      <li><a href="{{href}}"{{!' aria-current="page"' if section == name else ''}}>{{label}}</a></li>
%   end
% end
    </ul>
  </nav>
  <form class="logout" method="post" action="/logout">
    <input type="hidden" name="csrf_token" value="{{csrf}}">
    <span class="who">{{who.name}}</span>
    <button type="submit">{{_('Log out')}}</button>
  </form>
% end
</header>
<main id="main" tabindex="-1">
% for key in flash:
  <p class="flash" role="status">{{t(key)}}</p>
% end
{{!base}}
</main>
<footer>
  <p>{{ui.get('footer') or _('This appliance records telephone calls (audio), after an announcement tells the other party. Recordings are personal data: listen, download and erase them only for their purpose.')}}</p>
  <p><a href="/privacy">{{ui.get('privacy_link') or _('Privacy notice')}}</a></p>
</footer>
</body>
</html>
