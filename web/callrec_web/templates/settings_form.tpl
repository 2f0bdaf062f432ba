% rebase('layout.tpl', title=form.title, section='settings')
<p><a href="/settings">← {{_('Settings')}}</a></p>
<h1>{{form.title}}</h1>
<p>{{form.intro}}</p>
% include('settings_saved.tpl')
% if errors or general:
<div class="errors" role="alert">
  <p>{{_('Nothing was saved. Please correct what is marked below.') if errors else _('Nothing was saved:')}}</p>
%   if general:
  <p>{{general}}</p>
%   end
</div>
% end
<form method="post" action="{{form.path}}" class="stack settings" novalidate>
  <input type="hidden" name="csrf_token" value="{{csrf}}">
% for group in form.groups:
  <fieldset>
    <legend>{{group.legend}}</legend>
%   for f in group.fields:
%     value = values.get(f.name, '')
%     error = errors.get(f.name, '')
%     described = ' '.join(x for x in ((f.html_id + '-help') if f.help else '', (f.html_id + '-error') if error else '') if x)
%     attrs = (' aria-describedby="' + described + '"' if described else '') + (' aria-invalid="true"' if error else '')
%     if f.kind == 'bool':
    <label for="{{f.html_id}}"><input type="checkbox" id="{{f.html_id}}" name="{{f.name}}"{{!' checked' if value == 'on' else ''}}{{!attrs}}> {{f.label}}</label>
%     elif f.kind == 'choice':
    <label for="{{f.html_id}}">{{f.label}}</label>
    <select id="{{f.html_id}}" name="{{f.name}}"{{!attrs}}>
%       for choice, text in f.choices:
      <option value="{{choice}}"{{!' selected' if value == choice else ''}}>{{text}}</option>
%       end
    </select>
%     else:
    <label for="{{f.html_id}}">{{f.label}}</label>
    <input id="{{f.html_id}}" name="{{f.name}}" value="{{value}}"{{!' inputmode="decimal"' if f.kind == 'float' else (' inputmode="numeric"' if f.kind == 'int' else '')}} autocomplete="off" spellcheck="false" maxlength="1000"{{!attrs}}>
%     end
%     if f.help:
    <p class="help" id="{{f.html_id}}-help">{{f.help}}</p>
%     end
%     if error:
    <p class="errors field-error" id="{{f.html_id}}-error">{{error}}</p>
%     end
%   end
  </fieldset>
% end
  <button type="submit">{{_('Save')}}</button>
</form>
