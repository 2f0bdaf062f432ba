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
<a class="skip" href="#main">{{ui.get('skip', 'Skip to main content')}}</a>
<header class="top">
  <a class="brand" href="/">callrec</a>
% if who:
  <nav aria-label="Main">
    <ul>
% section = get('section', '')
% links = [('recordings.list', '/recordings', 'recordings', 'Recordings'), ('status.view', '/status', 'status', 'Status'), (None, '/account', 'account', 'Account'), ('users.manage', '/users', 'users', 'Users'), ('selftest.run', '/selftest', 'selftest', 'Self-test'), ('subjects.manage', '/subjects', 'subjects', 'People'), ('audit.view', '/audit', 'audit', 'Access log')]
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
    <button type="submit">Log out</button>
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
  <p>{{ui.get('footer', 'This appliance records telephone calls (audio), after an announcement tells the other party. Recordings are personal data: listen, download and erase them only for their purpose.')}}</p>
  <p><a href="/privacy">{{ui.get('privacy_link', 'Privacy notice')}}</a></p>
</footer>
</body>
</html>
