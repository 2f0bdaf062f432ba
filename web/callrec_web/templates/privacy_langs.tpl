% # The language switch of the privacy pages: every language, named in itself, the current one marked.
<nav class="langs" aria-label="{{T('lang_switch')}}">
  <ul>
% for code, name, current in languages:
    <li><a href="{{path}}?lang={{code}}" hreflang="{{code}}" lang="{{code}}"{{!' aria-current="true"' if current else ''}}>{{name}}</a></li>
% end
  </ul>
</nav>
